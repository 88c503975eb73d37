// The event loop (asyncio's BaseEventLoop): timers, a ready queue, a reactor, and a
// lock-free submission queue for other threads.
//
// One turn of the loop — the only place this order is written down (tested in
// tests/core/loop_order_test.cpp):
//   1. timers  — run every timer whose deadline has passed, by deadline then FIFO; timers
//                scheduled during this step wait for the next turn.
//   2. ready   — run the ready-queue entries that were queued when this step began
//                (call_soon callbacks, I/O readiness, signals, thread-safe submissions);
//                entries queued meanwhile run next turn, so no callback chain starves I/O.
//   3. poll    — wait for I/O with timeout 0 if anything is ready (or stop() was called),
//                else until the next timer deadline (forever if none). Readiness, signals
//                and everything other threads submitted become ready-queue entries.
//                While entries stay ready, the zero-timeout look at the OS is made at
//                least every 128 turns or 512 ready entries rather than every turn, and
//                not at all while no fd is watched (the OS has nothing to report then);
//                thread-safe submissions are still taken every turn. run_once(false)
//                always looks. Before a wait that may block, a loop that just took
//                thread-safe submissions watches for more for up to 20 µs.
//
// Threads: a Loop belongs to the thread that runs it. Every member is loop-thread-only
// except call_soon_threadsafe() and handle(); other threads hold a LoopHandle, whose
// operations are the whole thread-safe surface.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/detail/submit_node.hpp>
#include <weft/deadline.hpp>
#include <weft/handle.hpp>

namespace weft {

class Loop;

namespace detail {
class Inbox;
class LoopSeam;  // the fiber layer's way in (core/detail/loop_seam.hpp)
}  // namespace detail

// What went wrong, for the loop's exception handler (asyncio's context dict).
struct ExceptionContext {
    std::string message;           // e.g. "Exception in callback"
    std::exception_ptr exception;  // may be null
    std::string source;            // where the callback was scheduled: "file:line (function)"
};

using ExceptionHandler = std::function<void(Loop&, const ExceptionContext&)>;

// "file:line (function)" for exception reports.
std::string describe(const std::source_location& where);

// A small copyable reference to a loop for other threads. Outlives the loop safely:
// after the loop is closed, call_soon_threadsafe throws InvalidStateError.
class LoopHandle {
public:
    LoopHandle() = default;

    // Any thread. Runs fn on the loop thread in FIFO order with other submissions; throws
    // InvalidStateError if the loop is closed (the callback is then not queued). The
    // handle's cancel() (any thread) keeps it from running if it has not started.
    template <class F>
    ThreadsafeHandle call_soon_threadsafe(F&& fn,
                                          std::source_location where = std::source_location::current()) {
        auto* node = detail::make_submission(std::forward<F>(fn), where);
        submit(node);  // deletes it if it throws
        return ThreadsafeHandle(node);
    }

    // Any thread: call_soon_threadsafe for the completion of work done on another thread
    // (wrap_future, run_in_executor): if the loop closes before running it, it is dropped
    // silently rather than reported as a callback that never ran, as nobody is left to
    // await the result. Throws InvalidStateError if the loop is closed.
    template <class F>
    void post_completion(F&& fn, std::source_location where = std::source_location::current()) {
        auto* node = detail::make_submission(std::forward<F>(fn), where);
        node->release();  // no handle will share it
        node->mark_completion();
        submit(node);
    }

    // Any thread: asks the loop to stop after everything submitted before it has run.
    void stop();
    bool is_closed() const noexcept;
    explicit operator bool() const noexcept { return inbox_ != nullptr; }

private:
    friend class Loop;
    explicit LoopHandle(std::shared_ptr<detail::Inbox> inbox) : inbox_(std::move(inbox)) {}
    void submit(detail::SubmitNode* node);  // takes ownership, also on throw
    std::shared_ptr<detail::Inbox> inbox_;
};

class Loop {
public:
    Loop();   // throws SystemError if the OS poller cannot be created
    ~Loop();  // closes the loop if it is not closed (reporting work that never ran)
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // The loop running on this thread, or nullptr (asyncio's _get_running_loop).
    static Loop* running() noexcept;
    // The loop running on this thread; throws InvalidStateError if none is running.
    static Loop& current();

    // Runs turns until stop(). Throws InvalidStateError if this loop is closed or already
    // running, or another loop is running on this thread.
    //
    // fork(): a child process gets a copy of the loop whose OS poller is still shared with
    // the parent. The child must create its own Loop (it may, even from inside a callback
    // or task of the inherited one); running the inherited loop there throws
    // InvalidStateError, and closing or destroying it there releases nothing the parent
    // uses (its tasks are abandoned, not unwound).
    void run_forever();
    // Runs exactly one turn (for embedding in another program's loop, and for tests). The
    // turn ends in its poll step: with may_block == false that poll only looks.
    void run_once(bool may_block = true);
    // Makes run_forever() return after the current turn. Before run_forever: after one turn.
    void stop() noexcept;
    // Releases the OS poller; reports through the exception handler every callback, timer
    // and submission that will never run, and detaches live IoWatches. Not while running.
    void close();
    bool is_running() const noexcept;
    bool is_closed() const noexcept;
    static const char* reactor_name() noexcept;  // "epoll", "kqueue" or "poll"

    // The loop's clock (monotonic).
    TimePoint time() const noexcept { return Clock::now(); }

    // Schedules fn to run in the next turn's ready step (FIFO). Throws InvalidStateError
    // on a closed loop.
    template <class F>
    Handle call_soon(F&& fn, std::source_location where = std::source_location::current()) {
        auto* node = new detail::CallbackFn<std::decay_t<F>>(std::forward<F>(fn), where);
        Handle handle(node);
        schedule_soon(node);
        return handle;
    }

    // Schedules fn to run once `delay` has passed; a delay of zero or less means the next
    // turn's timer step, as in asyncio, and one past the clock's range means never (see
    // deadline.hpp). Throws InvalidStateError on a closed loop.
    template <class Rep, class Period, class F>
    TimerHandle call_later(std::chrono::duration<Rep, Period> delay, F&& fn,
                           std::source_location where = std::source_location::current()) {
        return call_at(deadline_after(delay, time()), std::forward<F>(fn), where);
    }

    // Schedules fn to run at `when` (a time() value; a past time means the next turn).
    template <class F>
    TimerHandle call_at(TimePoint when, F&& fn,
                        std::source_location where = std::source_location::current()) {
        auto* node = new detail::CallbackFn<std::decay_t<F>>(std::forward<F>(fn), where);
        node->deadline = when;
        TimerHandle handle(node);
        schedule_timer(node);
        return handle;
    }

    // Any thread: see LoopHandle::call_soon_threadsafe.
    template <class F>
    ThreadsafeHandle call_soon_threadsafe(F&& fn,
                                          std::source_location where = std::source_location::current()) {
        auto* node = detail::make_submission(std::forward<F>(fn), where);
        submit_threadsafe(node);  // deletes it if it throws
        return ThreadsafeHandle(node);
    }
    LoopHandle handle() const;  // any thread

    // Runs fn on the loop thread whenever signal signo arrives (asyncio semantics: one
    // loop per process owns a signal). Throws std::system_error: EINVAL for an invalid
    // signal (or SIGKILL/SIGSTOP), EBUSY when another loop owns it.
    void add_signal_handler(int signo, std::function<void()> fn);
    bool remove_signal_handler(int signo) noexcept;  // false if none was set

    // asyncio's debug mode: callbacks (and fiber slices) that hold the loop for at least
    // slow_callback_duration (100 ms by default) are reported through the exception
    // handler with their source and, for a fiber, the task and where it now waits;
    // scheduling from a thread other than the loop's throws instead of corrupting it; a
    // Future dropped while pending without ever being awaited is reported.
    void set_debug(bool on) noexcept;
    bool get_debug() const noexcept;
    void set_slow_callback_duration(Duration d) noexcept;
    Duration slow_callback_duration() const noexcept;
    // Debug mode only: throws InvalidStateError naming `what` when called from a thread
    // other than the loop's (a no-op otherwise).
    void check_thread(const char* what) const;

    // Errors that escape callbacks go here. The default prints the message, the source
    // and the exception's what() to stderr; the loop keeps running either way. Without a
    // handler set, a loop prints at most 10 reports a second and never waits for stderr
    // (a pipe nobody reads): the others are counted, and the count is printed with the
    // next report that gets through, or at close. default_exception_handler itself is
    // not rate-limited, but does not wait for stderr either.
    void set_exception_handler(ExceptionHandler handler);
    void call_exception_handler(const ExceptionContext& context) noexcept;
    static void default_exception_handler(const ExceptionContext& context) noexcept;

private:
    struct State;  // core/detail/loop_state.hpp
    friend class Handle;
    friend class IoWatch;
    friend class detail::LoopSeam;
    void schedule_soon(detail::CallbackNode* node);
    void schedule_timer(detail::CallbackNode* node);
    void submit_threadsafe(detail::SubmitNode* node);  // takes ownership, also on throw
    void check_open(const char* what) const;
    void check_accepts(detail::CallbackNode* node, const char* what) const;

    std::unique_ptr<State> s_;
};

}  // namespace weft
