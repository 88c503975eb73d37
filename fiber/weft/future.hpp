// Future<T> (asyncio.Future): a result that will be set later, on one loop's thread.
// Awaiting it — weft::await(f) or f.get() — suspends only the calling fiber. Not
// thread-safe: a future belongs to its loop (see ThreadFuture for cross-thread results).
// A future must not outlive its loop.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/error.hpp>
#include <weft/loop.hpp>

namespace weft {

namespace detail {

struct Fiber;

// A fiber waiting for a future: lives on the waiting fiber's stack, linked while it waits.
struct Waiter {
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
    Fiber* fiber = nullptr;
    // Called instead of waking `fiber` when set (lets one fiber watch many futures
    // without being woken, and rescanning them all, on every completion).
    void (*notify)(Waiter*) = nullptr;
};

// The untyped shared state of a Future or Task. Reference counted (loop thread only).
class FutureBase {
public:
    enum class Status : uint8_t { pending, done, cancelled };

    explicit FutureBase(Loop& loop) noexcept : loop_(&loop) {}
    virtual ~FutureBase();
    FutureBase(const FutureBase&) = delete;
    FutureBase& operator=(const FutureBase&) = delete;

    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;

    void ref() noexcept { ++refs_; }
    void unref() noexcept;

    bool done() const noexcept { return status_ != Status::pending; }
    bool cancelled() const noexcept { return status_ == Status::cancelled; }
    Loop& loop() const noexcept { return *loop_; }

    // Future: cancels now. Task: asks its fiber to stop (see TaskBase).
    virtual bool cancel(std::string message);
    void set_exception(std::exception_ptr error);
    std::exception_ptr exception();  // throws Cancelled / InvalidStateError
    void check_result();             // rethrows the stored error; Cancelled; InvalidStateError

    uint64_t add_done_callback(std::function<void()> fn);
    size_t remove_done_callback(uint64_t id) noexcept;

    // Suspends the current fiber until done, or until *deadline if given; returns done().
    // If the fiber is cancelled meanwhile, Cancelled propagates and — when cancel_inner,
    // as in asyncio — this future is cancelled too (shield passes false).
    bool wait(const char* what, const TimePoint* deadline = nullptr, bool cancel_inner = true);

    // Counts whatever outcome it has or will have as looked at: no "exception was never
    // retrieved" report (gather does this for the children it no longer reports on).
    void mark_retrieved() noexcept { retrieved_ = true; }
    // An exception is stored (peek: does not count as retrieving it).
    bool has_exception() const noexcept { return status_ == Status::done && error_ != nullptr; }

    virtual std::string describe() const { return "Future"; }

protected:
    void check_pending(const char* what) const;
    void finish(Status status);  // wakes waiters, schedules callbacks with call_soon
    void set_cancelled(std::string message) { cancel_message_ = std::move(message); finish(Status::cancelled); }

    Loop* loop_;
    uint32_t refs_ = 0;
    Status status_ = Status::pending;
    bool retrieved_ = false;  // result()/exception() looked at the outcome
    bool awaited_ = false;    // someone waited on it or added a done callback
    std::exception_ptr error_;
    std::string cancel_message_;
    Waiter* waiters_ = nullptr;
    std::vector<std::pair<uint64_t, std::function<void()>>> callbacks_;
    uint64_t next_callback_id_ = 1;

    friend void link_waiter(FutureBase&, Waiter&) noexcept;
    friend void unlink_waiter(FutureBase&, Waiter&) noexcept;
};

void link_waiter(FutureBase& f, Waiter& w) noexcept;
void unlink_waiter(FutureBase& f, Waiter& w) noexcept;

// An intrusive reference to a FutureBase-derived state.
template <class S>
class Ref {
public:
    Ref() noexcept = default;
    explicit Ref(S* s) noexcept : s_(s) {
        if (s_) s_->ref();
    }
    Ref(const Ref& o) noexcept : Ref(o.s_) {}
    Ref(Ref&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    template <class U, class = std::enable_if_t<std::is_convertible_v<U*, S*>>>
    Ref(const Ref<U>& o) noexcept : Ref(o.get()) {}
    Ref& operator=(Ref o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    ~Ref() {
        if (s_) s_->unref();
    }
    S* get() const noexcept { return s_; }
    S* operator->() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    S* s_ = nullptr;
};

template <class T>
class FutureState final : public FutureBase {
public:
    using FutureBase::FutureBase;
    void set_result(T value) {
        check_pending("Future::set_result");
        value_.emplace(std::move(value));
        finish(Status::done);
    }
    T& result() {
        check_result();
        return *value_;
    }

private:
    std::optional<T> value_;
};

template <>
class FutureState<void> final : public FutureBase {
public:
    using FutureBase::FutureBase;
    void set_result() {
        check_pending("Future::set_result");
        finish(Status::done);
    }
    void result() { check_result(); }
};

}  // namespace detail

template <class T = void>
class Future {
public:
    using value_type = T;

    // A pending future on the running loop (Loop::current()), or on `loop`.
    Future() : Future(Loop::current()) {}
    explicit Future(Loop& loop) : s_(new detail::FutureState<T>(loop)) {}

    // Completes the future; InvalidStateError if it is already done or cancelled.
    template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
    void set_result(U value) { s_->set_result(std::move(value)); }
    template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
    void set_result() { s_->set_result(); }
    void set_exception(std::exception_ptr error) { s_->set_exception(std::move(error)); }
    template <class E>
    void set_exception(E error) { s_->set_exception(std::make_exception_ptr(std::move(error))); }

    // Cancels a pending future (its waiters see Cancelled); false if already done.
    bool cancel(std::string message = {}) { return s_->cancel(std::move(message)); }
    bool done() const noexcept { return s_->done(); }
    bool cancelled() const noexcept { return s_->cancelled(); }

    // The result; rethrows the stored exception; Cancelled if cancelled;
    // InvalidStateError if not done yet. Never suspends.
    decltype(auto) result() { return s_->result(); }
    std::exception_ptr exception() { return s_->exception(); }

    // Runs fn(future) on the loop (via call_soon) once the future is done; returns an id
    // for remove_done_callback. A callback added to a done future is scheduled at once.
    uint64_t add_done_callback(std::function<void(Future&)> fn) {
        // A raw pointer: the state keeps its pending callbacks, so a Future captured here
        // would keep itself alive; finish() holds a reference while a callback runs.
        return s_->add_done_callback([s = s_.get(), fn = std::move(fn)] {
            Future self(s);
            fn(self);
        });
    }
    size_t remove_done_callback(uint64_t id) noexcept { return s_->remove_done_callback(id); }

    // await: suspends the calling fiber until done, then result().
    decltype(auto) get() {
        s_->wait("Future::get");
        return result();
    }
    friend decltype(auto) weft_await(Future& f) { return f.get(); }

    Loop& loop() const noexcept { return s_->loop(); }
    detail::FutureBase* base() const noexcept { return s_.get(); }  // for combinators

private:
    explicit Future(detail::FutureState<T>* s) noexcept : s_(s) {}
    detail::Ref<detail::FutureState<T>> s_;
};

// asyncio.create_future on a given loop.
template <class T = void>
Future<T> create_future(Loop& loop) {
    return Future<T>(loop);
}

// The customization point (asyncio's __await__): weft::await(x) calls weft_await(x),
// found by argument-dependent lookup. Define `weft_await(YourType&)` — it may suspend the
// calling fiber (by awaiting futures, sleeping, ...) and returns the awaited value.
template <class A>
concept Awaitable = requires(A& a) { weft_await(a); };

template <Awaitable A>
decltype(auto) await(A&& a) {
    return weft_await(a);
}

}  // namespace weft
