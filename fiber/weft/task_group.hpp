// TaskGroup (asyncio.TaskGroup): structured concurrency. Children are spawned through the
// group; join() waits for all of them. The first child failure cancels its siblings, and
// join() then throws TaskGroupError carrying every failure. A group that is destroyed
// without join() (say, because the parent's code threw) cancels and waits for its
// children before going away, so no child outlives its group.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <weft/task.hpp>

namespace weft {

// Every exception of the children that failed (Cancelled children are not failures).
class TaskGroupError : public Error {
public:
    explicit TaskGroupError(std::vector<std::exception_ptr> errors);
    const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

private:
    std::vector<std::exception_ptr> errors_;
};

class TaskGroup {
public:
    TaskGroup();  // on a fiber's loop (Loop::current())
    ~TaskGroup();
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    // Spawns a child. Throws InvalidStateError once the group is shutting down (a child
    // failed, or join() finished).
    template <class F, class... Args>
    auto spawn(F&& fn, Args&&... args) {
        return spawn(TaskOptions{}, std::forward<F>(fn), std::forward<Args>(args)...);
    }
    template <class F, class... Args>
    auto spawn(TaskOptions options, F&& fn, Args&&... args) {
        check_open();
        auto task = detail::make_task(*loop_, std::move(options), std::forward<F>(fn),
                                      std::forward<Args>(args)...);
        adopt(task);
        return task;
    }

    // Waits for every child; throws TaskGroupError if any failed. If the caller is
    // cancelled meanwhile, the children are cancelled and waited for, then Cancelled
    // propagates.
    void join();

    size_t size() const noexcept;

private:
    struct State;
    void check_open() const;
    void adopt(const TaskRef& task);
    void cancel_and_wait() noexcept;
    std::vector<detail::FutureBase*> bases() const;

    Loop* loop_;
    std::shared_ptr<State> state_;
};

}  // namespace weft
