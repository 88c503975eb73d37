// LoopThread: a loop running on a thread of its own (asyncio's "new_event_loop() +
// Thread(target=loop.run_forever)"), owned as one object so the loop cannot be run on
// the wrong thread by mistake. Other threads reach it only through its LoopHandle.
#pragma once

#include <exception>
#include <source_location>
#include <string>
#include <thread>
#include <utility>

#include <weft/loop.hpp>

namespace weft {

class LoopThread {
public:
    LoopThread() = default;
    ~LoopThread();  // stop() and join(); an error from the thread is printed, not thrown
    LoopThread(const LoopThread&) = delete;
    LoopThread& operator=(const LoopThread&) = delete;

    // Starts the thread and returns once its loop is running. Throws InvalidStateError
    // if already started.
    void start();

    // Any thread. Runs fn on the loop thread; throws InvalidStateError if the thread was
    // not started or its loop has stopped (the callback is then not queued).
    template <class F>
    void call_soon_threadsafe(F&& fn, std::source_location where = std::source_location::current()) {
        handle_.call_soon_threadsafe(std::forward<F>(fn), where);
    }

    // Any thread: the loop stops once everything submitted before this call has run, then
    // closes; anything submitted after it either throws or is reported as never run.
    void stop();
    // Waits for the thread to end; rethrows an exception that escaped its loop.
    void join();

    LoopHandle handle() const { return handle_; }  // empty before start()
    bool started() const noexcept { return thread_.joinable() || handle_; }

private:
    std::thread thread_;
    LoopHandle handle_;
    std::exception_ptr error_;  // written by the thread before it ends, read after join
};

}  // namespace weft
