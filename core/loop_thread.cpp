// LoopThread: start hands the loop's handle back through a promise, so submissions made
// right after start() always have a running loop to land in.
#include <weft/loop_thread.hpp>

#include <cstdio>
#include <future>

#include <weft/error.hpp>

namespace weft {

void LoopThread::start() {
    if (started()) throw InvalidStateError("LoopThread::start: already started");
    std::promise<LoopHandle> ready;
    auto handle = ready.get_future();
    thread_ = std::thread([this, ready = std::move(ready)]() mutable {
        try {
            Loop loop;
            ready.set_value(loop.handle());
            loop.run_forever();
            loop.close();
        } catch (...) {
            std::exception_ptr error = std::current_exception();
            try {
                ready.set_exception(error);
            } catch (const std::future_error&) {  // already running: keep it for join()
                error_ = error;
            }
        }
    });
    try {
        handle_ = handle.get();
    } catch (...) {
        thread_.join();
        throw;
    }
}

void LoopThread::stop() {
    if (handle_ && !handle_.is_closed()) {
        try {
            handle_.stop();
        } catch (const InvalidStateError&) {  // closed between the check and the submit
        }
    }
}

void LoopThread::join() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

LoopThread::~LoopThread() {
    stop();
    try {
        join();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "weft: LoopThread ended with an error: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "weft: LoopThread ended with an unknown error\n");
    }
}

}  // namespace weft
