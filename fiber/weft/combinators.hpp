// asyncio's combinators for fibers: gather, wait, wait_for, as_completed, timeout scopes
// and shield. They take Tasks, Futures, or plain callables (which are spawned as tasks,
// as asyncio wraps coroutines), and suspend only the calling fiber.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/future.hpp>
#include <weft/task.hpp>

namespace weft {

// A result or the exception that took its place (gather's return-exceptions form).
template <class T>
class Outcome {
public:
    using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    explicit Outcome(value_type v) : v_(std::move(v)) {}
    explicit Outcome(std::exception_ptr e) : v_(std::move(e)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    value_type& value() {  // rethrows the error
        if (!ok()) std::rethrow_exception(std::get<1>(v_));
        return std::get<0>(v_);
    }
    std::exception_ptr error() const noexcept { return ok() ? nullptr : std::get<1>(v_); }

private:
    std::variant<value_type, std::exception_ptr> v_;
};

struct ReturnExceptions {};
inline constexpr ReturnExceptions return_exceptions{};

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class H>
struct WaitResult {
    std::vector<H> done;
    std::vector<H> pending;
};

namespace detail {

template <class A>
struct is_handle : std::false_type {};
template <class T>
struct is_handle<Task<T>> : std::true_type {};
template <class T>
struct is_handle<Future<T>> : std::true_type {};

// What the combinators accept: a Task, a Future, or a callable to spawn.
template <class A>
concept AwaitableArg = is_handle<std::remove_cvref_t<A>>::value || std::invocable<std::decay_t<A>&>;

// A Task or Future stays itself; a callable becomes a spawned task.
template <class A>
auto to_handle(A&& a) {
    if constexpr (is_handle<std::remove_cvref_t<A>>::value)
        return std::remove_cvref_t<A>(a);
    else
        return spawn(std::forward<A>(a));
}

template <class H>
using result_t = typename H::value_type;
template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class H>
stored_t<result_t<H>> take_result(H& h) {
    if constexpr (std::is_void_v<result_t<H>>) {
        h.result();
        return {};
    } else {
        return std::move(h.result());
    }
}

template <class H>
Outcome<result_t<H>> take_outcome(H& h) {
    try {
        return Outcome<result_t<H>>(take_result(h));
    } catch (...) {
        return Outcome<result_t<H>>(std::current_exception());
    }
}

// gather's waiting: until all are done, or (unless return_exceptions) the first failure in
// completion order is rethrown. If the caller is cancelled, every child is cancelled.
void gather_wait(const std::vector<FutureBase*>& fs, bool return_exceptions);
// Cancels the current task at a deadline; knows whether it fired (asyncio.timeout).
class TimeoutScope {
public:
    explicit TimeoutScope(std::optional<TimePoint> deadline);
    ~TimeoutScope();
    TimeoutScope(const TimeoutScope&) = delete;
    TimeoutScope& operator=(const TimeoutScope&) = delete;
    std::optional<TimePoint> when() const noexcept { return deadline_; }
    void reschedule(std::optional<TimePoint> deadline);
    bool expired() const noexcept { return expired_; }
    // Cancelled reached the scope: true if it is the scope's own (the deadline passed and
    // no other cancel is pending), so it becomes TimeoutError (asyncio's uncancel rule).
    bool owns_cancellation() noexcept;
    [[noreturn]] void throw_timeout() const;

private:
    struct Timer : TimerNode {
        TimeoutScope* scope;
    };
    static void on_deadline(TimerNode* t);
    Timer timer_;
    std::optional<TimePoint> deadline_;
    Fiber* fiber_;
    TaskBase* task_;
    uint32_t cancelling_at_entry_;
    bool armed_ = false;    // timer_ is in the loop's timers
    bool expired_ = false;
    bool settled_ = false;  // the expiry's cancel request was taken back
};

// as_completed's and wait's bookkeeping: one waiter per future, registered once; indices
// come out in the order the futures finished (those already done first, in input order).
class CompletionOrder {
public:
    explicit CompletionOrder(std::vector<FutureBase*> futures);
    ~CompletionOrder();
    CompletionOrder(const CompletionOrder&) = delete;
    CompletionOrder& operator=(const CompletionOrder&) = delete;
    static constexpr size_t kAllReturned = SIZE_MAX;
    static constexpr size_t kTimedOut = SIZE_MAX - 1;
    // The index of the next future to finish, suspending until there is one (or *deadline
    // passes: kTimedOut); kAllReturned when every index has been returned.
    size_t next(const TimePoint* deadline = nullptr);
    size_t returned() const noexcept { return returned_; }
    void finished_push(size_t index);  // from a finished future's notification

    struct Node;

private:
    std::vector<FutureBase*> futures_;
    std::vector<Ref<FutureBase>> keep_;
    std::unique_ptr<Node[]> nodes_;
    std::vector<size_t> finished_;  // in completion order; [returned_, size) not yet returned
    size_t returned_ = 0;
    Fiber* waiting_ = nullptr;
};

template <class... H, size_t... I>
std::vector<FutureBase*> bases_of(std::tuple<H...>& hs, std::index_sequence<I...>) {
    return {std::get<I>(hs).base()...};
}

}  // namespace detail

// asyncio.gather(*aws): waits for all, returns their results in input order as a tuple
// (std::monostate for void). The first failure propagates; the others keep running.
template <detail::AwaitableArg... A>
auto gather(A&&... aws) {
    // Braces: the callables are spawned left to right, as asyncio starts them (the
    // arguments of make_tuple would be evaluated in an unspecified order).
    auto hs = std::tuple<decltype(detail::to_handle(std::forward<A>(aws)))...>{
        detail::to_handle(std::forward<A>(aws))...};
    auto seq = std::index_sequence_for<A...>{};
    detail::gather_wait(detail::bases_of(hs, seq), false);
    return std::apply([](auto&... h) { return std::make_tuple(detail::take_result(h)...); }, hs);
}

// asyncio.gather(*aws, return_exceptions=True): every item's Outcome, in input order.
template <detail::AwaitableArg... A>
auto gather(ReturnExceptions, A&&... aws) {
    // Braces: the callables are spawned left to right, as asyncio starts them (the
    // arguments of make_tuple would be evaluated in an unspecified order).
    auto hs = std::tuple<decltype(detail::to_handle(std::forward<A>(aws)))...>{
        detail::to_handle(std::forward<A>(aws))...};
    detail::gather_wait(detail::bases_of(hs, std::index_sequence_for<A...>{}), true);
    return std::apply([](auto&... h) { return std::make_tuple(detail::take_outcome(h)...); }, hs);
}

// gather over a range of Tasks or Futures: a vector of results in input order.
template <class H>
auto gather(const std::vector<H>& handles) {
    std::vector<detail::FutureBase*> bases;
    for (auto& h : handles) bases.push_back(h.base());
    detail::gather_wait(bases, false);
    std::vector<detail::stored_t<detail::result_t<H>>> out;
    out.reserve(handles.size());
    for (auto h : handles) out.push_back(detail::take_result(h));
    return out;
}

template <class H>
auto gather(ReturnExceptions, const std::vector<H>& handles) {
    std::vector<detail::FutureBase*> bases;
    for (auto& h : handles) bases.push_back(h.base());
    detail::gather_wait(bases, true);
    std::vector<Outcome<detail::result_t<H>>> out;
    out.reserve(handles.size());
    for (auto h : handles) out.push_back(detail::take_outcome(h));
    return out;
}

// asyncio.wait(aws, timeout, return_when): splits the handles into done and pending.
// Never cancels anything; a timeout just returns what is done so far. No handles at all is
// std::system_error(EINVAL), as asyncio's ValueError.
template <class H>
WaitResult<H> wait(const std::vector<H>& handles, ReturnWhen when = ReturnWhen::all_completed,
                   std::optional<Duration> timeout = std::nullopt) {
    if (handles.empty())  // asyncio: ValueError('Set of Tasks/Futures is empty.')
        throw Error(std::errc::invalid_argument,
                    "wait: the set of tasks/futures is empty");
    std::optional<TimePoint> deadline;
    if (timeout) deadline = deadline_after(*timeout);
    std::vector<detail::FutureBase*> bases;
    for (auto& h : handles) bases.push_back(h.base());
    detail::CompletionOrder order(std::move(bases));
    for (;;) {  // one step per finished handle: O(n) in all
        size_t i = order.next(deadline ? &*deadline : nullptr);
        if (i == detail::CompletionOrder::kAllReturned || i == detail::CompletionOrder::kTimedOut) break;
        if (when == ReturnWhen::first_completed) break;
        if (when == ReturnWhen::first_exception && handles[i].base()->has_exception()) break;
    }
    WaitResult<H> out;
    for (auto& h : handles) (h.base()->done() ? out.done : out.pending).push_back(h);
    return out;
}

// asyncio.wait_for(aw, timeout): the result, or — after cancelling aw and waiting until it
// has finished cancelling — TimeoutError.
template <detail::AwaitableArg A, class Rep, class Period>
decltype(auto) wait_for(A&& aw, std::chrono::duration<Rep, Period> timeout) {
    auto h = detail::to_handle(std::forward<A>(aw));
    TimePoint deadline = deadline_after(timeout);
    if (!h.base()->wait("wait_for", &deadline)) {
        h.base()->cancel("wait_for: timed out");
        h.base()->wait("wait_for");
        if (h.base()->cancelled())
            throw TimeoutError("wait_for: timed out after " +
                               std::to_string(std::chrono::duration<double>(timeout).count()) + " s");
    }
    return detail::take_result(h);
}

// asyncio.shield(aw): waits for aw, but cancelling the caller does not cancel aw.
template <detail::AwaitableArg A>
decltype(auto) shield(A&& aw) {
    auto h = detail::to_handle(std::forward<A>(aw));
    h.base()->wait("shield", nullptr, /*cancel_inner=*/false);
    return detail::take_result(h);
}

// The asyncio.timeout() context manager's object, handed to a scope's body that takes
// it: when() the deadline is (nullopt: none), reschedule() it, expired() whether it
// passed. Lives as long as the scope.
class Timeout {
public:
    std::optional<TimePoint> when() const noexcept { return scope_.when(); }
    // A new deadline (nullopt: none); InvalidStateError once it has expired. A deadline
    // already past expires it in the next turn.
    void reschedule(std::optional<TimePoint> deadline) { scope_.reschedule(deadline); }
    bool expired() const noexcept { return scope_.expired(); }

private:
    explicit Timeout(detail::TimeoutScope& scope) : scope_(scope) {}
    template <class F>
    friend decltype(auto) timeout_at(std::optional<TimePoint> deadline, F&& fn);
    detail::TimeoutScope& scope_;
};

// asyncio.timeout / timeout_at as a scope: runs fn() — or fn(Timeout&), to see and move
// the deadline — and if the deadline passes first, the calling task is cancelled inside fn
// and the Cancelled becomes TimeoutError here. A nullopt deadline means none.
template <class F>
decltype(auto) timeout_at(std::optional<TimePoint> deadline, F&& fn) {
    detail::TimeoutScope scope(deadline);
    try {
        if constexpr (std::is_invocable_v<F&, Timeout&>) {
            Timeout cm(scope);
            return fn(cm);
        } else {
            return fn();
        }
    } catch (const Cancelled&) {
        if (scope.owns_cancellation()) scope.throw_timeout();
        throw;
    }
}

template <class Rep, class Period, class F>
decltype(auto) timeout(std::chrono::duration<Rep, Period> delay, F&& fn) {
    return timeout_at(deadline_after(delay), std::forward<F>(fn));
}

// asyncio.timeout(None): no deadline until the body reschedules one.
template <class F>
decltype(auto) timeout(std::nullopt_t, F&& fn) {
    return timeout_at(std::nullopt, std::forward<F>(fn));
}

// asyncio.as_completed: iterate the handles in the order they finish. Each step of the
// iteration suspends the calling fiber until the next one is done.
template <class H>
class AsCompleted {
public:
    explicit AsCompleted(std::vector<H> handles, std::optional<TimePoint> deadline = std::nullopt)
        : handles_(std::move(handles)), order_(bases(handles_)), deadline_(deadline) {}

    // The next handle to finish (in the order they finished), or nullopt when all have
    // been returned. TimeoutError if the deadline passes first (the handles go on).
    std::optional<H> next() {
        size_t i = order_.next(deadline_ ? &*deadline_ : nullptr);
        if (i == detail::CompletionOrder::kAllReturned) return std::nullopt;
        if (i == detail::CompletionOrder::kTimedOut)
            throw TimeoutError("as_completed: timed out with " +
                               std::to_string(handles_.size() - order_.returned()) +
                               " of " + std::to_string(handles_.size()) + " not done");
        return handles_[i];
    }

    class iterator {
    public:
        explicit iterator(AsCompleted* owner) : owner_(owner) { advance(); }
        iterator() = default;
        H& operator*() { return *current_; }
        iterator& operator++() {
            advance();
            return *this;
        }
        bool operator==(const iterator& o) const { return !current_ && !o.current_; }

    private:
        void advance() { current_ = owner_->next(); }
        AsCompleted* owner_ = nullptr;
        std::optional<H> current_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

private:
    static std::vector<detail::FutureBase*> bases(const std::vector<H>& hs) {
        std::vector<detail::FutureBase*> out;
        for (auto& h : hs) out.push_back(h.base());
        return out;
    }
    std::vector<H> handles_;
    detail::CompletionOrder order_;
    std::optional<TimePoint> deadline_;
};

template <class H>
AsCompleted<H> as_completed(std::vector<H> handles) {
    return AsCompleted<H>(std::move(handles));
}

// asyncio.as_completed(aws, timeout=...): the iteration throws TimeoutError once `timeout`
// (counted from this call) passes with handles still pending.
template <class H, class Rep, class Period>
AsCompleted<H> as_completed(std::vector<H> handles, std::chrono::duration<Rep, Period> timeout) {
    return AsCompleted<H>(std::move(handles), deadline_after(timeout));
}

}  // namespace weft
