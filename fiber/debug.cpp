// dump_tasks and the fiber runtime's debug-mode descriptions of its ready entries.
#include <weft/debug.hpp>

#include <cxxabi.h>
#include <execinfo.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "fiber/detail/runtime.hpp"

namespace weft {

namespace {

const char* state_name(detail::Fiber::State s) {
    switch (s) {
        case detail::Fiber::State::created: return "not started";
        case detail::Fiber::State::scheduled: return "scheduled";
        case detail::Fiber::State::running: return "running";
        case detail::Fiber::State::suspended: return "suspended";
        case detail::Fiber::State::done: return "done";
        case detail::Fiber::State::freed: return "freed";
    }
    return "?";
}

// "binary(_ZN4weft5sleepE...+0x3f) [0x...]" -> "weft::sleep(...)+0x3f  (binary)"
std::string symbolize(char* raw) {
    std::string line = raw;
    char* open = std::strchr(raw, '(');
    char* plus = open ? std::strchr(open, '+') : nullptr;
    if (!open || !plus || plus == open + 1) return line;
    std::string mangled(open + 1, plus);
    int status = 0;
    char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
    if (status != 0 || !demangled) return line;
    std::string out = std::string(demangled) + std::string(plus, std::strcspn(plus, ")")) +
                      "  (" + std::string(raw, open) + ")";
    std::free(demangled);
    return out;
}

std::vector<std::string> stack_of(detail::Fiber* f) {
    std::vector<std::string> out;
    if (f->state != detail::Fiber::State::suspended && f->state != detail::Fiber::State::running &&
        f->state != detail::Fiber::State::scheduled)
        return out;
    if (f->state == detail::Fiber::State::scheduled && !f->context) return out;
    // Running but not here: a task of an outer loop that runs this one inside it (e.g. in
    // a fork() child); its saved context is stale.
    if (f->state == detail::Fiber::State::running && f != detail::current_fiber()) return out;
    void* frames[64];
    int n = detail::context_backtrace(f, frames, 64);
    char** symbols = ::backtrace_symbols(frames, n);
    if (!symbols) return out;
    for (int i = 1; i < n; ++i) out.push_back(symbolize(symbols[i]));  // [0]: the capture itself
    std::free(symbols);
    return out;
}

std::string describe_wait(const detail::Fiber* f) {
    const detail::WaitRecord* w = f->waiting;
    if (!w || f->state != detail::Fiber::State::suspended) return {};
    std::string out = w->what;
    if (w->fd >= 0) out += " fd " + std::to_string(w->fd);
    if (w->deadline >= 0) {
        const auto left = TimePoint(Duration(w->deadline)) - f->loop->time();
        char text[48];
        std::snprintf(text, sizeof text, ", deadline in %.3f s",
                      std::chrono::duration<double>(left).count());
        out += text;
    }
    return out;
}

}  // namespace

std::vector<TaskInfo> task_snapshot(Loop& loop, bool with_stacks) {
    std::vector<TaskInfo> out;
    for (detail::TaskBase* t = detail::FiberRuntime::of(loop).tasks(); t; t = t->next_task) {
        TaskInfo info;
        info.name = t->name();
        if (detail::Fiber* f = t->fiber) {
            info.state = state_name(f->state);
            info.suspensions = f->suspensions;
            info.waiting = describe_wait(f);
            if (with_stacks) info.stack = stack_of(f);
        } else {
            info.state = "done";
        }
        out.push_back(std::move(info));
    }
    return out;
}

std::string dump_tasks(Loop& loop) {
    std::string out;
    auto tasks = task_snapshot(loop);
    out += std::to_string(tasks.size()) + " task(s)\n";
    for (const TaskInfo& t : tasks) {
        out += "Task '" + t.name + "' (" + t.state;
        if (!t.waiting.empty()) out += ": " + t.waiting;
        out += ")\n";
        for (const std::string& frame : t.stack) out += "    " + frame + "\n";
    }
    return out;
}

std::string dump_tasks() { return dump_tasks(Loop::current()); }

namespace detail {

FiberRuntime* fiber_runtimes = nullptr;

namespace {
std::mutex fiber_runtimes_lock;
}

void FiberRuntime::enlist() {
    std::lock_guard lock(fiber_runtimes_lock);
    next_runtime = fiber_runtimes;
    fiber_runtimes = this;
}

void FiberRuntime::delist() noexcept {
    std::lock_guard lock(fiber_runtimes_lock);
    for (FiberRuntime** p = &fiber_runtimes; *p; p = &(*p)->next_runtime) {
        if (*p == this) {
            *p = next_runtime;
            return;
        }
    }
}

std::string describe_fiber_entry(void* fiber, uintptr_t) {
    return "Task '" + static_cast<Fiber*>(fiber)->task->name() + "'";
}

std::string locate_fiber_entry(Loop& loop, void* fiber, uintptr_t) {
    for (TaskBase* t = FiberRuntime::of(loop).tasks(); t; t = t->next_task) {  // still alive?
        if (t->fiber != fiber) continue;
        std::string where = "Task '" + t->name() + "', now waiting at:";
        for (const std::string& frame : stack_of(t->fiber)) where += "\n    " + frame;
        return where;
    }
    return "a task that has finished since";
}

}  // namespace detail

}  // namespace weft
