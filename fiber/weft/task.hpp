// Task<T> (asyncio.Task): a future driven by a fiber running fn. weft::spawn(fn, args...)
// or weft::create_task(loop, fn, name) start one; it runs even if nobody keeps the Task. An
// exception nobody retrieved is reported through the loop's exception handler with the
// task's name: when it finishes if nobody holds it, else when the last Task is dropped.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/future.hpp>

namespace weft {

namespace detail {

class TaskBase : public FutureBase {
public:
    // An empty name means asyncio's default, "Task-<n>", numbered now and spelled out
    // only when someone asks (most tasks are never named or printed). By reference, and
    // moved only when given: most tasks have none, and each move of even an empty string
    // is a call to memcpy.
    TaskBase(Loop& loop, std::string&& name);
    ~TaskBase() override;

    // asyncio Task.cancel: the fiber's current or next suspension throws Cancelled(message);
    // a task not started yet never runs its body. False if already done.
    bool cancel(std::string message) override;
    std::string describe() const override { return "Task '" + name() + "'"; }
    const std::string& name() const;
    void set_name(std::string name);
    bool cancel_requested() const noexcept { return cancel_requested_; }
    // asyncio Task.cancelling() / uncancel(): pending cancel requests, for scopes that
    // cancel their own task (timeout) and must not swallow someone else's cancel.
    uint32_t cancelling() const noexcept { return cancel_count_; }
    // When no request is left, a cancel not yet raised in the fiber is dropped too (3.13).
    uint32_t uncancel() noexcept;
    const std::string& cancel_request_message() const noexcept { return cancel_request_message_; }

    // On the task's fiber: runs fn and completes the task. Never throws.
    virtual void run_body() noexcept = 0;
    // Completes a task that was cancelled before it started.
    void finish_unstarted() { set_cancelled(cancel_request_message_); }
    // Completes a task that could not start (no stack): with the reason.
    void fail_unstarted(std::exception_ptr e) { complete_error(std::move(e)); }

    TaskBase* prev_task = nullptr;  // the runtime's list of live tasks (all_tasks)
    TaskBase* next_task = nullptr;
    Fiber* fiber = nullptr;         // owned by the runtime; null once finished

protected:
    void complete() { finish(Status::done); }
    void complete_cancelled(const std::string& message) { set_cancelled(message); }
    void complete_error(std::exception_ptr e) {
        error_ = std::move(e);
        finish(Status::done);
    }

private:
    mutable std::string name_;
    uint64_t number_ = 0;  // for the default name; 0 once a name was given
    bool cancel_requested_ = false;
    uint32_t cancel_count_ = 0;
    std::string cancel_request_message_;
};

template <class T>
class TaskResult : public TaskBase {
public:
    using TaskBase::TaskBase;
    T& result() {
        check_result();
        return *value_;
    }

protected:
    std::optional<T> value_;
};

template <>
class TaskResult<void> : public TaskBase {
public:
    using TaskBase::TaskBase;
    void result() { check_result(); }
};

template <class T, class Fn>
class TaskState final : public TaskResult<T> {
public:
    TaskState(Loop& loop, std::string&& name, Fn fn)
        : TaskResult<T>(loop, std::move(name)), fn_(std::move(fn)) {}

    void run_body() noexcept override {
        try {
            if constexpr (std::is_void_v<T>)
                fn_();
            else
                this->value_.emplace(fn_());
            this->complete();
        } catch (const Cancelled& c) {
            this->complete_cancelled(c.message());
        } catch (...) {
            this->complete_error(std::current_exception());
        }
    }

private:
    Fn fn_;
};

// Registers the task with its loop's fiber runtime and queues its first run.
void start_task(TaskBase* task, size_t stack_size);

}  // namespace detail

// An untyped handle to any task (what current_task and all_tasks return).
class TaskRef {
public:
    TaskRef() noexcept = default;
    explicit TaskRef(detail::TaskBase* t) noexcept : s_(t) {}

    bool done() const noexcept { return s_->done(); }
    bool cancelled() const noexcept { return s_->cancelled(); }
    bool cancel(std::string message = {}) { return s_->cancel(std::move(message)); }
    const std::string& get_name() const noexcept { return s_->name(); }
    uint32_t cancelling() const noexcept { return s_->cancelling(); }
    uint32_t uncancel() noexcept { return s_->uncancel(); }
    void set_name(std::string name) { s_->set_name(std::move(name)); }
    std::exception_ptr exception() { return s_->exception(); }
    Loop& loop() const noexcept { return s_->loop(); }
    detail::FutureBase* base() const noexcept { return s_.get(); }  // for combinators
    explicit operator bool() const noexcept { return bool(s_); }
    friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept {
        return a.s_.get() == b.s_.get();
    }

protected:
    detail::Ref<detail::TaskBase> s_;
};

template <class T = void>
class Task : public TaskRef {
public:
    using value_type = T;
    Task() noexcept = default;
    explicit Task(detail::TaskResult<T>* t) noexcept : TaskRef(t) {}

    // The result; rethrows the task's exception; Cancelled if it was cancelled;
    // InvalidStateError if it has not finished. Never suspends.
    decltype(auto) result() { return state()->result(); }

    uint64_t add_done_callback(std::function<void(Task&)> fn) {
        // A raw pointer, as in Future::add_done_callback: no reference cycle.
        return s_->add_done_callback([s = state(), fn = std::move(fn)] {
            Task self(s);
            fn(self);
        });
    }
    size_t remove_done_callback(uint64_t id) noexcept { return s_->remove_done_callback(id); }

    // await: suspends the calling fiber until the task is done, then result(). If the
    // caller is cancelled while waiting, the task is cancelled too (asyncio).
    decltype(auto) get() {
        s_->wait("Task::get");
        return result();
    }
    friend decltype(auto) weft_await(Task& t) { return t.get(); }

private:
    detail::TaskResult<T>* state() const noexcept {
        return static_cast<detail::TaskResult<T>*>(s_.get());
    }
};

// Options for a new task: a name (default "Task-N") and a stack size (0: the loop's).
struct TaskOptions {
    std::string name;
    size_t stack_size = 0;
};

namespace detail {

template <class F, class... Args>
auto make_task(Loop& loop, TaskOptions options, F&& fn, Args&&... args) {
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable {
        return std::invoke(fn, args...);
    };
    using R = std::invoke_result_t<decltype(call)&>;
    auto* state = new TaskState<R, decltype(call)>(loop, std::move(options.name), std::move(call));
    Task<R> task(state);
    start_task(state, options.stack_size);
    return task;
}
}  // namespace detail

// Runs fn(args...) in a new fiber on the running loop; returns its Task.
template <class F, class... Args>
auto spawn(F&& fn, Args&&... args) {
    return detail::make_task(Loop::current(), {}, std::forward<F>(fn), std::forward<Args>(args)...);
}
template <class F, class... Args>
auto spawn(TaskOptions options, F&& fn, Args&&... args) {
    return detail::make_task(Loop::current(), std::move(options), std::forward<F>(fn),
                             std::forward<Args>(args)...);
}
// asyncio.create_task(coro, name=...) on a given loop (it need not be running yet), and
// asyncio's loop.create_task(coro, name=...): a free function, as Loop is the core layer's
// and knows nothing of fibers.
template <class F>
auto create_task(Loop& loop, F&& fn, std::string name = {}) {
    return detail::make_task(loop, {std::move(name), 0}, std::forward<F>(fn));
}

// The task whose fiber is running (an empty TaskRef on the loop's own stack).
TaskRef current_task() noexcept;
// Every task of the running loop that has not finished (asyncio.all_tasks).
std::vector<TaskRef> all_tasks();
std::vector<TaskRef> all_tasks(Loop& loop);

// Inside this scope the calling fiber's suspensions do not throw Cancelled; a cancel that
// arrives meanwhile is raised at the first suspension after the scope. For clean-up code
// that must finish (tear-down that suspends, joining children). No-op outside a fiber.
class DeferCancellation {
public:
    DeferCancellation() noexcept;
    ~DeferCancellation();
    DeferCancellation(const DeferCancellation&) = delete;
    DeferCancellation& operator=(const DeferCancellation&) = delete;

private:
    detail::Fiber* fiber_;
};

// Fiber stacks of this loop: default usable size for new tasks (256 KiB unless set).
void set_default_stack_size(Loop& loop, size_t bytes);
// Guard pages under fiber stacks (on by default): see StackPool in fiber/detail/stack.hpp.
// Turn them off to run more than ~32k fibers at once without raising vm.max_map_count.
void set_stack_guard_pages(Loop& loop, bool on);

}  // namespace weft
