// ThreadFuture's untyped half: status changes under one mutex, a condition variable for
// blocking waiters, and callbacks run outside the lock on the completing thread.
#include <weft/thread_future.hpp>

#include <weft/deadline.hpp>

namespace weft::detail {

bool ThreadFutureBase::cancel() {
    std::vector<std::function<void(ThreadFutureBase&)>> callbacks;
    {
        std::lock_guard lock(mutex_);
        if (status_ == Status::cancelled) return true;
        if (status_ != Status::pending) return false;
        status_ = Status::cancelled;
        callbacks.swap(callbacks_);
    }
    changed_.notify_all();
    for (auto& cb : callbacks) {
        try {
            cb(*this);
        } catch (...) {
        }
    }
    return true;
}

bool ThreadFutureBase::set_running_or_notify_cancel() {
    std::lock_guard lock(mutex_);
    if (status_ == Status::cancelled) return false;
    if (status_ != Status::pending)
        throw InvalidStateError("ThreadFuture::set_running_or_notify_cancel: not pending");
    status_ = Status::running;
    return true;
}

bool ThreadFutureBase::done() const {
    std::lock_guard lock(mutex_);
    return status_ == Status::done || status_ == Status::cancelled;
}

bool ThreadFutureBase::cancelled() const {
    std::lock_guard lock(mutex_);
    return status_ == Status::cancelled;
}

bool ThreadFutureBase::running() const {
    std::lock_guard lock(mutex_);
    return status_ == Status::running;
}

bool ThreadFutureBase::wait(Timeout timeout) const {
    std::unique_lock lock(mutex_);
    auto finished = [&] { return status_ == Status::done || status_ == Status::cancelled; };
    if (!timeout) {
        changed_.wait(lock, finished);
        return true;
    }
    return changed_.wait_for(lock, *timeout, finished);
}

void ThreadFutureBase::set_exception(std::exception_ptr error) {
    if (!error) throw InvalidStateError("ThreadFuture::set_exception: null exception");
    complete(Status::done, [&] { error_ = std::move(error); }, "ThreadFuture::set_exception");
}

std::unique_lock<std::mutex> ThreadFutureBase::wait_finished(Timeout timeout, const char* what) const {
    std::unique_lock lock(mutex_);
    auto finished = [&] { return status_ == Status::done || status_ == Status::cancelled; };
    if (!timeout)
        changed_.wait(lock, finished);
    else if (!changed_.wait_until(lock, deadline_after(*timeout), finished))
        throw TimeoutError(std::string(what) + ": not done within the timeout");
    if (status_ == Status::cancelled) throw Cancelled("ThreadFuture was cancelled");
    return lock;
}

std::unique_lock<std::mutex> ThreadFutureBase::wait_result(Timeout timeout) {
    auto lock = wait_finished(timeout, "ThreadFuture::result");
    if (error_) std::rethrow_exception(error_);
    return lock;
}

std::exception_ptr ThreadFutureBase::exception(Timeout timeout) {
    auto lock = wait_finished(timeout, "ThreadFuture::exception");
    return error_;
}

void ThreadFutureBase::add_done_callback(std::function<void(ThreadFutureBase&)> fn) {
    {
        std::lock_guard lock(mutex_);
        if (status_ != Status::done && status_ != Status::cancelled) {
            callbacks_.push_back(std::move(fn));
            return;
        }
    }
    fn(*this);  // already finished: run now, on this thread
}

}  // namespace weft::detail
