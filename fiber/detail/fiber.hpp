// A fiber: a guarded stack, a saved machine context and the scheduling state that the
// suspension functions use. Fibers always run on their loop's thread; the loop itself
// never runs on a fiber stack. Private to the fiber layer.
#pragma once

#include <cstdint>
#include <cstddef>

#include "stack.hpp"
#include "core/detail/sanitizers.hpp"
#include <weft/contextvars.hpp>
#include <weft/handle.hpp>

namespace weft {
class Loop;
}

namespace weft::detail {

class TaskBase;
class FiberRuntime;

// What a suspended fiber waits for: set by the wait site, on its own stack, for as long as
// it waits (see WaitScope). dump_tasks reads it, and so does the gdb extension
// (gdb/weft-gdb.py), from memory alone, which is why these are plain fields.
struct WaitRecord {
    const char* what;              // the wait site: "sleep", "Lock::acquire", "read", ...
    const void* object = nullptr;  // the future, wait list or IoWaiter waited on, if any
    int64_t deadline = -1;         // on the loop's clock (TimePoint's count), -1: none
    int fd = -1;                   // the descriptor of an I/O wait
};

struct Fiber {
    // Changed only by set_state, which names the allowed changes.
    enum class State : uint8_t {
        created,    // queued for its first run, no stack yet
        scheduled,  // a resume entry is in the loop's ready queue
        running,
        suspended,  // waiting: only wake() brings it back
        done,       // finished: freed by the next holder of the thread (reap)
        freed,      // its block is being freed: nothing may follow
    };

    void* context = nullptr;         // saved context while not running (Boost.Context)
    void* return_context = nullptr;  // the loop's context while this fiber runs
    // The C++ runtime's per-thread exception state (the caught-exception stack and the
    // uncaught count), kept per fiber while it is switched out: see context.cpp.
    struct ExceptionState {
        void* caught = nullptr;
        unsigned int uncaught = 0;
    } exceptions;
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    // Sanitizer bookkeeping (see context.cpp); ordinary builds have none.
    struct SanitizerState {
        void* fake_stack = nullptr;           // ASan: this fiber's fake stack while switched out
        const void* caller_bottom = nullptr;  // ASan: the loop stack it returns to
        size_t caller_size = 0;
        void* tsan_fiber = nullptr;   // TSan: this fiber's context
        void* tsan_caller = nullptr;  // TSan: the context that switched in
    } sanitizer;
#endif
    Stack stack;
    size_t stack_size = 0;  // requested usable size, 0 = the loop's default
    State state = State::created;
    uint32_t suspensions = 0;     // times it switched out to wait (debug: TaskInfo)
    bool cancel_pending = false;  // the next (or current) suspension throws Cancelled
    int cancel_deferred = 0;      // > 0 inside DeferCancellation scopes: cancel waits
    Loop* loop = nullptr;
    TaskBase* task = nullptr;     // the task this fiber drives; holds a reference to it
    FiberRuntime* runtime = nullptr;
    // The task's Context (contextvars): its creator's, shared copy-on-write, taken at
    // spawn; null while no ContextVar was set. Released when the fiber is retired.
    ContextSlot context_vars;
    const WaitRecord* waiting = nullptr;  // while suspended at a wait site that says what

    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;
};

// The life of a fiber: every change of Fiber::state goes through set_state, and these are
// the only changes allowed.
//   created   → running    its first switch-in
//   created   → done       ended before it started: cancelled first, or no stack to be had
//   running   → suspended  suspend(): waits until wake() (or a cancel) brings it back
//   running   → scheduled  yield(): its own resume entry queued behind the ready work
//   suspended → scheduled  wake(), or loop close resuming it to unwind
//   scheduled → running    its resume entry ran, or the fiber before it took the entry
//   running   → done       its body returned
//   done      → freed      reap, as its block is freed
constexpr bool state_change_allowed(Fiber::State from, Fiber::State to) noexcept {
    using S = Fiber::State;
    switch (to) {
        case S::running: return from == S::created || from == S::scheduled;
        case S::suspended: return from == S::running;
        case S::scheduled: return from == S::running || from == S::suspended;
        case S::done: return from == S::created || from == S::running;
        case S::freed: return from == S::done;
        case S::created: return false;  // only where it is constructed
    }
    return false;
}
// Debug builds: aborts, saying which state f is in, which one it was to change to (or, if
// `expected`, was expected to be in already) and its task.
[[noreturn, gnu::cold]] void illegal_fiber_state(const Fiber* f, Fiber::State to,
                                                 bool expected) noexcept;

// The one way to change a fiber's state. Debug builds (NDEBUG not defined, as in the default
// debugoptimized build) check the old state; release builds only store the new one.
[[gnu::always_inline]] inline void set_state(Fiber* f, Fiber::State to) noexcept {
#ifndef NDEBUG
    if (!state_change_allowed(f->state, to)) [[unlikely]]
        illegal_fiber_state(f, to, /*expected=*/false);
#endif
    f->state = to;
}
// Debug builds: aborts unless f is in state `now` (a state another party already set).
[[gnu::always_inline]] inline void expect_state(const Fiber* f, Fiber::State now) noexcept {
#ifndef NDEBUG
    if (f->state != now) [[unlikely]]
        illegal_fiber_state(f, now, /*expected=*/true);
#else
    (void)f, (void)now;
#endif
}

// context.cpp — the one file that includes Boost.Context. It switches stacks and decides
// nothing: which fiber runs next and who frees a finished one are the scheduler's. Each
// switch that returns on a fiber's stack returns the fiber that gave it the thread (itself
// when the loop did), which the scheduler frees if it finished.
void context_prepare(Fiber* f);  // make the initial context on f->stack
void context_release(Fiber* f);  // after the fiber ended, before its stack is reused
// loop → fiber; returns when the thread comes back to the loop, with the fiber that gave it
// back (which suspended or ended): f, or one that f (or a successor) handed over to.
Fiber* context_switch_in(Fiber* f);
Fiber* context_switch_out(Fiber* f);  // fiber → loop; returns when resumed
// fiber f → fiber g (started, not running), without the loop; returns when f is resumed.
Fiber* context_switch_to(Fiber* f, Fiber* g);
// A finished f's last switch: to g (started, not running) if not null, which frees f;
// else back to the loop, which does.
[[noreturn]] void context_exit(Fiber* f, Fiber* g);
// The call stack of a suspended (or the running) fiber, as return addresses.
int context_backtrace(Fiber* f, void** frames, int max);
// The scheduler: the fiber's whole life, called on its stack with the fiber that gave it
// the thread (see above); ends with context_exit.
[[noreturn]] void fiber_main(Fiber* f, Fiber* from) noexcept;
// The scheduler: the next ready entry's fiber if it may get the thread straight from f
// (see LoopSeam::take_next_ready), its entry taken and the fiber marked running; else null.
Fiber* take_next_fiber(Fiber* f) noexcept;
// The scheduler, loop side: runs f (created or scheduled) now, not through its ready entry,
// until the thread comes back to the loop; frees whichever fiber finished meanwhile. Loop
// close unwinds its tasks with it.
void run_fiber_now(Fiber* f);

// The fiber running on this thread, or nullptr on the loop's own stack. Set by context.cpp
// on every switch; initial-exec: one %fs-relative load (libweft is linked statically).
extern thread_local Fiber* t_current_fiber __attribute__((tls_model("initial-exec")));
inline Fiber* current_fiber() noexcept { return t_current_fiber; }
// contextvars.cpp: the Context of the code that runs on this thread off a fiber.
extern thread_local ContextSlot t_thread_context __attribute__((tls_model("initial-exec")));
// Its stack and name, for the stack-overflow report (async-signal-safe: reads only).
const Stack* running_fiber_stack(const char** name) noexcept;
// current_fiber(), or InvalidStateError "<what>: must be called from inside a fiber".
[[noreturn, gnu::cold]] void throw_not_in_fiber(const char* what);
inline Fiber* require_fiber(const char* what) {
    if (Fiber* f = current_fiber()) [[likely]]
        return f;
    throw_not_in_fiber(what);
}

// Switch back to the loop until wake(f) (or a cancel) brings the fiber back. Throws
// Cancelled if the fiber's task was cancelled, before or while suspended.
void suspend(Fiber* f);
// Give other ready work a turn (sleep(0)). Also a cancellation point.
void yield(Fiber* f);
// Loop thread: make a suspended fiber run again (in the next ready step). Idempotent.
void wake(Fiber* f) noexcept;

// Says what f waits for while the scope lasts (nested scopes: the innermost).
class WaitScope {
public:
    WaitScope(Fiber* f, const WaitRecord& record) noexcept : fiber_(f), outer_(f->waiting) {
        f->waiting = &record;
    }
    ~WaitScope() { fiber_->waiting = outer_; }
    WaitScope(const WaitScope&) = delete;
    WaitScope& operator=(const WaitScope&) = delete;

private:
    Fiber* fiber_;
    const WaitRecord* outer_;
};

// Wakes a fiber at `deadline` while it waits for something else; unregisters on scope exit.
class WakeTimer : public TimerNode {
public:
    WakeTimer(Fiber* f, TimePoint deadline);
    ~WakeTimer();
    WakeTimer(const WakeTimer&) = delete;
    WakeTimer& operator=(const WakeTimer&) = delete;
    bool fired() const noexcept { return fired_; }

private:
    Fiber* fiber_;
    bool fired_ = false;
};

}  // namespace weft::detail
