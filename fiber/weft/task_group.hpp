// TaskGroup (asyncio.TaskGroup): structured concurrency, in two spellings.
//
// The scope, asyncio's `async with TaskGroup() as tg:` —
//
//     weft::task_group([&](weft::TaskGroup& tg) {
//         tg.spawn(fetch, url1);
//         tg.spawn(fetch, url2);
//         weft::sleep(3s);          // interrupted at once if a child fails
//     });                           // waits for every child, also those spawned late
//
// When a child fails, its siblings are cancelled and so is the body, at its current
// suspension point; once every child has finished, the scope throws TaskGroupError with
// every failure (the body's own exception among them). A cancel of the task running the
// scope cancels every child and then propagates Cancelled (unless a child failed: errors
// win, and the cancellation is raised again at the next suspension).
//
// The explicit form — `TaskGroup tg; tg.spawn(...); tg.join();` — has the same rules for
// the children, but a failure does not interrupt the parent's own code before join(): a
// destructor cannot turn the Cancelled that would unwind it into a TaskGroupError. A group
// destroyed without join() (the parent's code threw) cancels and waits for its children,
// so no child outlives its group.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/task.hpp>

namespace weft {

// Every exception of the children that failed (Cancelled children are not failures), in
// the order they failed, and the scope's body's own, last.
class TaskGroupError : public Error {
public:
    explicit TaskGroupError(std::vector<std::exception_ptr> errors);
    const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

private:
    std::vector<std::exception_ptr> errors_;
};

class TaskGroup {
public:
    TaskGroup();  // the explicit form, on a fiber's loop (Loop::current())
    ~TaskGroup();
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    // Spawns a child; the body and any child may spawn more while the group waits.
    // InvalidStateError once the group is shutting down (a child failed, or cancel()) or
    // finished (every child done after join() or the end of the scope).
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

    // Waits for every child, those spawned meanwhile included; throws TaskGroupError if
    // any failed. If the caller is cancelled meanwhile, the children are cancelled and
    // waited for, then Cancelled propagates.
    void join();

    // asyncio TaskGroup.cancel(): cancels every child and, in the scoped form, the body;
    // the scope then ends without Cancelled. Idempotent; a no-op once finished.
    void cancel();

    size_t size() const noexcept;  // children spawned so far

    struct State;

private:
    template <class F>
    friend void task_group(F&& body);
    struct Scoped {};
    explicit TaskGroup(Scoped);
    void check_open() const;
    void adopt(const TaskRef& task);
    // asyncio's __aexit__: waits for every child, then throws what the group ends with.
    // body_error is what left the body (null if it returned).
    void exit(std::exception_ptr body_error);

    Loop* loop_;
    std::shared_ptr<State> state_;
};

// asyncio's `async with TaskGroup() as tg:` as a scope: runs body(tg) on the calling fiber,
// then waits for the group (see above). The body returns nothing, as an `async with` block
// has no value: results come from the Tasks that spawn returns.
template <class F>
void task_group(F&& body) {
    static_assert(std::is_void_v<std::invoke_result_t<F&, TaskGroup&>>,
                  "task_group: the body returns void; take results from the spawned Tasks");
    TaskGroup tg{TaskGroup::Scoped{}};
    try {
        body(tg);
    } catch (...) {
        // Returns only when the group itself cancelled the body (tg.cancel()) and
        // nothing failed: the scope then ends normally, as asyncio's does.
        tg.exit(std::current_exception());
        return;
    }
    tg.exit(nullptr);
}

}  // namespace weft
