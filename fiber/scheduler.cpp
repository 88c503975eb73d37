// The scheduler: which fiber gets the thread next (through the loop's ready queue, or
// straight from the fiber before it), suspension and wake-up (sleep among them), the
// fiber's state changes, and freeing a finished fiber (reap, its one owner). context.cpp
// does the switches.
#include "core/detail/block_alloc.hpp"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "fiber/detail/fiber.hpp"
#include "fiber/detail/runtime.hpp"
#include "fiber/detail/stack.hpp"
#include <weft/deadline.hpp>
#include <weft/sleep.hpp>
#include <weft/task.hpp>

namespace weft::detail {

// One Fiber is allocated per task: it stays within one 128-byte allocation class (the
// sanitizer builds add their bookkeeping on top).
static_assert(kSanitized || sizeof(Fiber) <= 128, "Fiber grew past 128 bytes");

void* Fiber::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void Fiber::operator delete(void* p) noexcept { detail::free_block(p); }

void throw_not_in_fiber(const char* what) {
    throw InvalidStateError(std::string(what) +
                            ": must be called from inside a fiber (a task), not from the "
                            "loop's own stack or a plain thread");
}

namespace {
const char* state_name(Fiber::State s) noexcept {
    switch (s) {
        case Fiber::State::created: return "created";
        case Fiber::State::scheduled: return "scheduled";
        case Fiber::State::running: return "running";
        case Fiber::State::suspended: return "suspended";
        case Fiber::State::done: return "done";
        case Fiber::State::freed: return "freed";
    }
    return "?";
}
}  // namespace

void illegal_fiber_state(const Fiber* f, Fiber::State to, bool expected) noexcept {
    // The task is not asked for its name: that may allocate, and this may be a corrupt fiber.
    if (expected)
        std::fprintf(stderr, "weft: fiber %p (task %p) is %s where %s was expected\n",
                     static_cast<const void*>(f), static_cast<const void*>(f->task),
                     state_name(f->state), state_name(to));
    else
        std::fprintf(stderr, "weft: illegal fiber state change %s -> %s (fiber %p, task %p)\n",
                     state_name(f->state), state_name(to), static_cast<const void*>(f),
                     static_cast<const void*>(f->task));
    std::abort();
}

namespace {

void throw_if_cancel_pending(Fiber* f) {
    if (!f->cancel_pending || f->cancel_deferred > 0) return;
    f->cancel_pending = false;
    throw Cancelled(f->task->cancel_request_message());
}

// Before a created fiber's first switch-in: false if it must not run (cancelled before it
// started, or no stack to be had), its task finished then and the fiber done.
bool prepare_first_run(Fiber* f) noexcept {
    TaskBase* task = f->task;
    if (task->cancel_requested()) {  // cancelled before it started: the body never runs
        set_state(f, Fiber::State::done);
        task->finish_unstarted();
        return false;
    }
    try {
        install_overflow_guard();
        f->runtime->stacks.allocate(f->stack, f->stack_size);
        context_prepare(f);
    } catch (...) {  // no stack, no run: the task fails with the reason
        set_state(f, Fiber::State::done);
        task->fail_unstarted(std::current_exception());
        return false;
    }
    return true;
}

// A finished fiber's last rites: its stack back to the pool, its block freed, the task's
// reference dropped (which may report an exception nobody retrieved). Only reap calls it.
void retire_fiber(Fiber* f) noexcept {
    set_state(f, Fiber::State::freed);
    FiberRuntime& rt = *f->runtime;
    TaskBase* task = f->task;
    if (f->stack.base) {
        context_release(f);
        rt.stacks.release(f->stack);
    }
    rt.remove(task);
    task->fiber = nullptr;
    f->context_vars.release();
    delete f;
    task->unref();  // the fiber's reference
}

// The one owner of freeing: `from` has just given up the thread (or, never started, could
// not take it); if it finished, it is freed here, by whoever holds the thread now: the loop
// after a switch-in, the fiber it handed the thread to, or the scheduler at once.
[[gnu::always_inline]] inline void reap(Fiber* from) noexcept {
    if (from->state == Fiber::State::done) retire_fiber(from);
}

// Loop side: run the fiber until the thread comes back (it, or a fiber it handed over to,
// suspended or finished).
void run_fiber(Fiber* f) {
    if (f->state == Fiber::State::created) prepare_first_run(f);
    if (f->state != Fiber::State::done) {
        set_state(f, Fiber::State::running);
        f = context_switch_in(f);
    }
    reap(f);
}

void resume_entry(void* fiber, uintptr_t) {
    Fiber* f = static_cast<Fiber*>(fiber);
    if (f->state == Fiber::State::scheduled || f->state == Fiber::State::created) run_fiber(f);
}

}  // namespace

void run_fiber_now(Fiber* f) { run_fiber(f); }

// A fiber's resumption in the loop's ready queue: self is the Fiber. Its descriptions for
// debug mode are in debug.cpp; one still queued at close was not unwound by on_close.
const ReadyKind fiber_entry = {
    .run = &resume_entry,
    .describe = &describe_fiber_entry,
    .locate = &locate_fiber_entry,
    .discard = [](void*, uintptr_t) { return std::string("a low-level ready entry"); },
};

// The fiber of a ready entry that the running fiber took from the loop (take_next_ready),
// made ready to get the thread (marked running): null if there is none or it has nothing to
// run. It may be the running fiber itself (its own yield entry), which then runs on.
[[gnu::always_inline]] inline Fiber* runnable_next(void* taken) noexcept {
    if (!taken) return nullptr;
    Fiber* g = static_cast<Fiber*>(taken);
    if (g->state == Fiber::State::created && !prepare_first_run(g)) {
        reap(g);  // its entry would only have finished its task: that is done now
        return nullptr;
    }
    if (g->state != Fiber::State::scheduled && g->state != Fiber::State::created)
        return nullptr;  // an entry that would have done nothing
    set_state(g, Fiber::State::running);
    return g;
}

Fiber* take_next_fiber(Fiber* f) noexcept {
    return runnable_next(LoopSeam::take_next_ready(*f->loop, fiber_entry));
}

namespace {
// Gives the thread up: straight to the next fiber of this ready step when that is where
// the loop would go next (saving the trip through the loop's stack), else to the loop.
// `next` is that fiber if the caller took it already; f itself means f runs on.
void switch_away(Fiber* f, Fiber* next) {
    if (next == f) return;
    reap(next ? context_switch_to(f, next) : context_switch_out(f));
}
}  // namespace

// The body runs, then the thread goes straight to the next fiber of this ready step if
// there is one (which frees this one), else back to the loop (which does).
void fiber_main(Fiber* f, Fiber* from) noexcept {
    reap(from);
    f->task->run_body();
    set_state(f, Fiber::State::done);
    context_exit(f, take_next_fiber(f));
}

void suspend(Fiber* f) {
    throw_if_cancel_pending(f);
    set_state(f, Fiber::State::suspended);
    ++f->suspensions;
    switch_away(f, take_next_fiber(f));
    expect_state(f, Fiber::State::running);  // set by whoever gave it the thread
    throw_if_cancel_pending(f);
}

void yield(Fiber* f) {
    throw_if_cancel_pending(f);
    set_state(f, Fiber::State::scheduled);
    ++f->suspensions;
    // Queued behind everything ready; if nothing else is (and the loop has nothing to do
    // before this step), f's own entry comes straight back and it runs on.
    switch_away(f, runnable_next(LoopSeam::post_and_take_next(*f->loop, fiber_entry, f)));
    expect_state(f, Fiber::State::running);  // set by whoever gave it the thread, or itself
    throw_if_cancel_pending(f);
}

void wake(Fiber* f) noexcept {
    if (f->state != Fiber::State::suspended) return;
    set_state(f, Fiber::State::scheduled);
    LoopSeam::post(*f->loop, fiber_entry, f, 0);
}

WakeTimer::WakeTimer(Fiber* f, TimePoint when) : fiber_(f) {
    deadline = when;
    fire = [](TimerNode* t) {
        auto* self = static_cast<WakeTimer*>(t);
        self->fired_ = true;
        wake(self->fiber_);
    };
    LoopSeam::add_timer(*f->loop, this);
}

WakeTimer::~WakeTimer() { LoopSeam::remove_timer(*fiber_->loop, this); }

void start_task(TaskBase* task, size_t stack_size) {
    FiberRuntime& rt = FiberRuntime::of(task->loop());
    if (task->loop().is_closed()) throw InvalidStateError("create_task: event loop is closed");
    auto* f = new Fiber;
    f->stack_size = stack_size;
    f->task = task;
    f->runtime = &rt;
    f->loop = &task->loop();
    // The task runs in a copy of its creator's Context: a shared snapshot (copy-on-write).
    Fiber* creator = current_fiber();
    f->context_vars = (creator ? creator->context_vars : t_thread_context).copy();
    task->fiber = f;
    task->ref();  // the fiber's reference, dropped when it finishes
    rt.add(task);
    LoopSeam::post(*f->loop, fiber_entry, f, 0);
}

}  // namespace weft::detail

namespace weft {

// In this file with yield and suspend, which sleep(0) and sleep call on the hot path.
void sleep(Duration delay) {
    detail::Fiber* f = detail::require_fiber("sleep");
    // asyncio: a delay of zero or less only yields to the other ready work.
    if (delay <= Duration::zero()) return detail::yield(f);
    const TimePoint deadline = deadline_after(delay, f->loop->time());
    detail::WakeTimer timer(f, deadline);
    const detail::WaitRecord waiting{"sleep", nullptr, deadline.time_since_epoch().count()};
    detail::WaitScope scope(f, waiting);
    while (!timer.fired()) detail::suspend(f);
}

}  // namespace weft
