// ThreadFuture<T> (concurrent.futures.Future): a result produced on one thread and
// waited for on others. Thread-safe throughout. Blocking result(timeout) / wait(timeout)
// are for plain threads; a fiber awaits it through wrap_future (fiber layer) instead.
// Done callbacks run on the thread that completes the future (or at once, on the caller's
// thread, if it is already done), as in Python.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <weft/error.hpp>

namespace weft {

namespace detail {

class ThreadFutureBase : public std::enable_shared_from_this<ThreadFutureBase> {
public:
    enum class Status { pending, running, done, cancelled };
    using Timeout = std::optional<std::chrono::steady_clock::duration>;

    virtual ~ThreadFutureBase() = default;

    bool cancel();                          // pending only; true if now cancelled
    bool set_running_or_notify_cancel();    // pending -> running; false if cancelled
    bool done() const;
    bool cancelled() const;
    bool running() const;
    bool wait(Timeout timeout) const;       // true if done within the timeout
    void set_exception(std::exception_ptr error);
    std::exception_ptr exception(Timeout timeout);  // TimeoutError, Cancelled
    void add_done_callback(std::function<void(ThreadFutureBase&)> fn);

protected:
    // Waits until finished (TimeoutError, Cancelled); returns with the lock held.
    std::unique_lock<std::mutex> wait_finished(Timeout timeout, const char* what) const;
    // The same, and rethrows the stored exception.
    std::unique_lock<std::mutex> wait_result(Timeout timeout);
    // Sets the final status under the lock (via fill), then runs the callbacks outside it.
    template <class Fill>
    void complete(Status status, Fill&& fill, const char* what);

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    Status status_ = Status::pending;               // guarded by mutex_
    std::exception_ptr error_;                      // guarded by mutex_
    std::vector<std::function<void(ThreadFutureBase&)>> callbacks_;  // guarded by mutex_
};

template <class Fill>
void ThreadFutureBase::complete(Status status, Fill&& fill, const char* what) {
    std::vector<std::function<void(ThreadFutureBase&)>> callbacks;
    {
        std::lock_guard lock(mutex_);
        if (status_ == Status::done || status_ == Status::cancelled)
            throw InvalidStateError(std::string(what) + ": the future is already finished");
        fill();
        status_ = status;
        callbacks.swap(callbacks_);
    }
    changed_.notify_all();
    for (auto& cb : callbacks) {
        try {
            cb(*this);
        } catch (...) {  // as concurrent.futures: a failing callback does not stop the others
        }
    }
}

template <class T>
class ThreadFutureState : public ThreadFutureBase {
public:
    void set_result(T value) {
        complete(Status::done, [&] { value_.emplace(std::move(value)); }, "ThreadFuture::set_result");
    }
    T& result(Timeout timeout) {
        auto lock = wait_result(timeout);
        return *value_;
    }

private:
    std::optional<T> value_;  // guarded by mutex_, immutable once done
};

template <>
class ThreadFutureState<void> : public ThreadFutureBase {
public:
    void set_result() { complete(Status::done, [] {}, "ThreadFuture::set_result"); }
    void result(Timeout timeout) { wait_result(timeout); }
};

}  // namespace detail

template <class T = void>
class ThreadFuture {
public:
    using value_type = T;
    using Timeout = detail::ThreadFutureBase::Timeout;

    ThreadFuture() : s_(std::make_shared<detail::ThreadFutureState<T>>()) {}

    // Blocks up to `timeout` (forever if none): the result, the stored exception rethrown,
    // Cancelled, or TimeoutError.
    decltype(auto) result(Timeout timeout = std::nullopt) { return s_->result(timeout); }
    std::exception_ptr exception(Timeout timeout = std::nullopt) { return s_->exception(timeout); }
    bool wait(Timeout timeout = std::nullopt) const { return s_->wait(timeout); }
    bool done() const { return s_->done(); }
    bool cancelled() const { return s_->cancelled(); }
    bool running() const { return s_->running(); }
    bool cancel() { return s_->cancel(); }  // only while pending (not yet running)

    void add_done_callback(std::function<void(ThreadFuture&)> fn) {
        s_->add_done_callback([fn = std::move(fn)](detail::ThreadFutureBase& base) {
            ThreadFuture self(std::static_pointer_cast<detail::ThreadFutureState<T>>(
                base.shared_from_this()));
            fn(self);
        });
    }

    // Producer side.
    template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
    void set_result(U value) { s_->set_result(std::move(value)); }
    template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
    void set_result() { s_->set_result(); }
    void set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }
    bool set_running_or_notify_cancel() { return s_->set_running_or_notify_cancel(); }

private:
    explicit ThreadFuture(std::shared_ptr<detail::ThreadFutureState<T>> s) : s_(std::move(s)) {}
    std::shared_ptr<detail::ThreadFutureState<T>> s_;
};

}  // namespace weft
