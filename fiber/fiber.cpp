// The fiber runtime of a loop: starting tasks on pooled stacks, suspension and wake-up
// through the loop's ready queue, cancellation, all_tasks, and unwinding at close.
#include <detail/block_alloc.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "detail/fiber.hpp"
#include "detail/runtime.hpp"
#include "detail/stack.hpp"
#include <weft/deadline.hpp>
#include <weft/run.hpp>
#include <weft/sleep.hpp>
#include <weft/executor.hpp>
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
        f->stack = f->runtime->stacks.allocate(f->stack_size);
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

bool is_fiber_entry(void (*fn)(void*, uintptr_t)) noexcept { return fn == &resume_entry; }

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
    return runnable_next(f->loop->take_next_ready(&resume_entry));
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
    switch_away(f, runnable_next(f->loop->post_and_take_next(&resume_entry, f)));
    expect_state(f, Fiber::State::running);  // set by whoever gave it the thread, or itself
    throw_if_cancel_pending(f);
}

void wake(Fiber* f) noexcept {
    if (f->state != Fiber::State::suspended) return;
    set_state(f, Fiber::State::scheduled);
    f->loop->post(&resume_entry, f, 0);
}

WakeTimer::WakeTimer(Fiber* f, TimePoint when) : fiber_(f) {
    deadline = when;
    fire = [](TimerNode* t) {
        auto* self = static_cast<WakeTimer*>(t);
        self->fired_ = true;
        wake(self->fiber_);
    };
    f->loop->add_timer(this);
}

WakeTimer::~WakeTimer() { fiber_->loop->remove_timer(this); }

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
    f->loop->post(&resume_entry, f, 0);
}

TaskBase::~TaskBase() = default;

bool TaskBase::cancel(std::string message) {
    if (done()) return false;
    cancel_requested_ = true;
    ++cancel_count_;
    cancel_request_message_ = std::move(message);
    if (fiber && fiber->state != Fiber::State::created) {
        fiber->cancel_pending = true;
        wake(fiber);
    }
    return true;
}

uint32_t TaskBase::uncancel() noexcept {
    if (cancel_count_ == 0) return 0;
    if (--cancel_count_ == 0 && fiber) fiber->cancel_pending = false;
    return cancel_count_;
}

namespace {
// Default task numbers: unique in the process, taken by each thread in blocks so that a
// spawn does not pay a locked instruction (numbers rise per thread, not across threads).
std::atomic<uint64_t> g_task_numbers{0};
constexpr uint64_t kTaskNumberBlock = 1024;
thread_local uint64_t t_next_task_number __attribute__((tls_model("initial-exec"))) = 0;
thread_local uint64_t t_task_number_end __attribute__((tls_model("initial-exec"))) = 0;

uint64_t next_task_number() noexcept {
    if (t_next_task_number == t_task_number_end) [[unlikely]] {
        t_next_task_number = g_task_numbers.fetch_add(kTaskNumberBlock, std::memory_order_relaxed) + 1;
        t_task_number_end = t_next_task_number + kTaskNumberBlock;
    }
    return t_next_task_number++;
}
}  // namespace

TaskBase::TaskBase(Loop& loop, std::string name) : FutureBase(loop), name_(std::move(name)) {
    if (name_.empty()) number_ = next_task_number();
}

const std::string& TaskBase::name() const {
    if (number_ != 0 && name_.empty()) name_ = "Task-" + std::to_string(number_);
    return name_;
}

void TaskBase::set_name(std::string name) {
    name_ = std::move(name);
    number_ = 0;
}

// At close, unfinished tasks are reported and unwound: each is cancelled and resumed
// directly (the loop no longer runs) until its fiber ends, so destructors on its stack run.
namespace {
// Pools whose jobs outlived the shutdown wait: their threads still use them, so they are
// never freed; kept here, reachable (leak checkers), until the process ends.
void abandon_pool(std::unique_ptr<ThreadPool> pool) {
    static std::mutex mutex;
    static auto* abandoned = new std::vector<std::unique_ptr<ThreadPool>>;
    std::lock_guard lock(mutex);
    abandoned->push_back(std::move(pool));
}
}  // namespace

void FiberRuntime::shutdown_executors() {
    struct Pool {
        std::unique_ptr<ThreadPool>* pool;
        const char* name;
    };
    std::vector<Pool> pools{{&default_executor, "the default executor"},
                            {&file_executor, "the file executor"},
                            {&resolver_executor, "the resolver executor"}};
    for (auto& replaced : replaced_executors) pools.push_back({&replaced, "a replaced default executor"});
    for (Pool& p : pools)
        if (*p.pool) (*p.pool)->shutdown(false, false);  // all refuse new work at once
    const TimePoint deadline = deadline_after(executor_shutdown_timeout, Clock::now());
    for (Pool& p : pools) {
        ThreadPool* pool = p.pool->get();
        if (!pool || pool->join_until(deadline)) continue;
        // asyncio.run warns "The executor did not finishing joining its threads within N
        // seconds" and goes on; so does weft. The jobs end on their own; what they post
        // back once the loop is closed is dropped.
        char waited[32];
        std::snprintf(waited, sizeof waited, "%.3g s",
                      std::chrono::duration<double>(executor_shutdown_timeout).count());
        loop_.call_exception_handler({std::string(p.name) + " did not finish within " + waited +
                                          ": " + std::to_string(pool->running_jobs()) +
                                          " job(s) still running; not waiting for them any longer",
                                      nullptr, "executor shutdown"});
        pool->detach_workers();
        abandon_pool(std::move(*p.pool));
    }
}

void FiberRuntime::on_close(Loop& loop) {
    // Jobs still running finish first (their results are dropped with the loop), as
    // asyncio's shutdown_default_executor does.
    shutdown_executors();
    while (TaskBase* t = tasks_) {
        Ref<TaskBase> keep(t);
        loop.call_exception_handler(
            {"Task was destroyed but it is pending: " + t->describe(), nullptr, t->describe()});
        t->cancel("event loop closed");
        for (int round = 0; round < 100 && t->fiber; ++round) {
            Fiber* f = t->fiber;
            if (f->state != Fiber::State::created) {  // a fiber never started just ends
                f->cancel_pending = true;
                // suspended, or scheduled already (woken, or yielding while it unwinds)
                if (f->state != Fiber::State::scheduled) set_state(f, Fiber::State::scheduled);
            }
            run_fiber(f);
        }
        if (t->fiber) {  // it refuses to end: give up on it, without freeing a live stack
            loop.call_exception_handler(
                {"Task ignored cancellation at loop close; its stack is leaked", nullptr,
                 t->describe()});
            remove(t);
            t->fiber = nullptr;
        }
    }
    // What the loop was still doing for nobody (a closed stream's flush) ends here; the
    // tasks' unwinding above may have started some of it.
    while (Background* b = background_) {
        unlink(b);
        b->abandon();
    }
}

}  // namespace weft::detail

namespace weft {

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

TaskRef current_task() noexcept {
    detail::Fiber* f = detail::current_fiber();
    return f ? TaskRef(f->task) : TaskRef();
}

std::vector<TaskRef> all_tasks(Loop& loop) {
    std::vector<TaskRef> out;
    for (detail::TaskBase* t = detail::FiberRuntime::of(loop).tasks(); t; t = t->next_task)
        out.emplace_back(t);
    return out;
}

std::vector<TaskRef> all_tasks() { return all_tasks(Loop::current()); }

void set_default_stack_size(Loop& loop, size_t bytes) {
    detail::FiberRuntime::of(loop).stacks.set_default_size(bytes);
}

void set_stack_guard_pages(Loop& loop, bool on) {
    detail::FiberRuntime::of(loop).stacks.set_guard_pages(on);
}

DeferCancellation::DeferCancellation() noexcept : fiber_(detail::current_fiber()) {
    if (fiber_) ++fiber_->cancel_deferred;
}

DeferCancellation::~DeferCancellation() {
    if (fiber_) --fiber_->cancel_deferred;
}

}  // namespace weft
