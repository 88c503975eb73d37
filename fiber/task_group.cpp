// TaskGroup: children, the failure rule (the first failure cancels the rest and, in the
// scoped form, the body), and the exit that waits for every child (asyncio's __aexit__).
#include <weft/task_group.hpp>

#include <deque>

#include "fiber/detail/fiber.hpp"

namespace weft {

namespace {
std::string describe_errors(const std::vector<std::exception_ptr>& errors) {
    std::string what = std::to_string(errors.size()) + " task(s) of the group failed:";
    for (const auto& e : errors) what += " [" + describe_exception(e) + "]";
    return what;
}

// KeyboardInterrupt and the like: asyncio's "base errors" (SystemExit, KeyboardInterrupt),
// which end the group as themselves instead of inside a TaskGroupError.
bool is_base_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const Cancelled&) {
        return false;
    } catch (const BaseException&) {
        return true;
    } catch (...) {
        return false;
    }
}
}  // namespace

TaskGroupError::TaskGroupError(std::vector<std::exception_ptr> errors)
    : Error(std::errc::operation_canceled, describe_errors(errors)),
      errors_(std::move(errors)) {}

// A child's notification, on its own future: counts it finished the moment it finishes,
// so the group's exit sees every child end even when no callback can run any more (the
// loop closing). What a failure does to the others waits for the done callback, a ready
// step later, as in asyncio: children failing in the same step all count as failures.
struct ChildWaiter : detail::Waiter {
    TaskGroup::State* group = nullptr;
    detail::FutureBase* child = nullptr;
};

struct TaskGroup::State {
    Loop* loop = nullptr;
    TaskRef parent;                       // scoped form: the task running the body
    std::vector<TaskRef> children;        // every child, in spawn order
    std::deque<ChildWaiter> waiters;      // one per child (stable addresses)
    std::vector<detail::FutureBase*> finished;  // children in the order they finished
    size_t live = 0;                      // children not finished yet
    detail::Fiber* exiting_fiber = nullptr;     // waiting in exit() for live == 0
    bool exiting = false;
    bool aborting = false;                // children cancelled; no new ones
    bool parent_cancel_requested = false;
    bool finished_all = false;            // exit() is over: no new children, no reactions

    ~State() {  // normally every child finished; a leaked one must not keep our waiter
        for (auto& w : waiters)
            if (!w.child->done()) detail::unlink_waiter(*w.child, w);
    }

    void abort() {
        aborting = true;
        for (auto& child : children)
            if (!child.done()) child.cancel("TaskGroup is shutting down");
    }

    // asyncio's _on_task_done, for a child that failed (run as its done callback).
    void on_child_failed(detail::FutureBase* child) {
        if (finished_all) return;
        if (parent && parent.done()) {
            loop->call_exception_handler({"A TaskGroup child failed after its parent finished",
                                          child->exception(), child->describe()});
            return;
        }
        if (aborting || parent_cancel_requested) return;
        abort();
        if (parent) {  // interrupt the body wherever it waits (scoped form only)
            parent_cancel_requested = true;
            parent.cancel("a task of the TaskGroup failed");
        }
    }
};

namespace {
// Suspends until every child has finished (also those spawned meanwhile). A Cancelled
// that reaches the wait goes to on_cancel, and the wait goes on.
template <class OnCancel>
void wait_for_children(TaskGroup::State& g, const char* what, OnCancel on_cancel) {
    if (g.live == 0) return;
    g.exiting_fiber = detail::require_fiber(what);
    const detail::WaitRecord waiting{what, &g};
    detail::WaitScope scope(g.exiting_fiber, waiting);
    while (g.live > 0) {
        try {
            detail::suspend(g.exiting_fiber);
        } catch (const Cancelled&) {
            on_cancel();
        }
    }
    g.exiting_fiber = nullptr;
}

void on_child_finished(detail::Waiter* w) {
    auto* cw = static_cast<ChildWaiter*>(w);
    TaskGroup::State& g = *cw->group;
    g.finished.push_back(cw->child);
    if (--g.live == 0 && g.exiting_fiber) detail::wake(g.exiting_fiber);
}
}  // namespace

TaskGroup::TaskGroup() : loop_(&Loop::current()), state_(std::make_shared<State>()) {
    state_->loop = loop_;
}

TaskGroup::TaskGroup(Scoped) : TaskGroup() {
    state_->parent = current_task();
    if (!state_->parent)
        throw InvalidStateError("task_group: must be called from inside a fiber (a task)");
}

TaskGroup::~TaskGroup() {
    if (state_->finished_all) return;
    // Left without join(): the children must not outlive the group. Their failures stay
    // unretrieved on their tasks, so the loop reports them instead of losing them.
    DeferCancellation defer;  // joining children must finish even if we are cancelled
    state_->abort();
    wait_for_children(*state_, "~TaskGroup", [] {});
    state_->finished_all = true;
}

size_t TaskGroup::size() const noexcept { return state_->children.size(); }

void TaskGroup::check_open() const {
    if (state_->finished_all || (state_->exiting && state_->live == 0))
        throw InvalidStateError("TaskGroup::spawn: the group is finished");
    if (state_->aborting) throw InvalidStateError("TaskGroup::spawn: the group is shutting down");
}

void TaskGroup::adopt(const TaskRef& task) {
    State& g = *state_;
    g.children.push_back(task);
    detail::FutureBase* child = task.base();
    ChildWaiter& w = g.waiters.emplace_back();
    w.group = &g;
    w.child = child;
    w.notify = &on_child_finished;
    ++g.live;
    detail::link_waiter(*child, w);
    std::weak_ptr<State> weak = state_;
    child->add_done_callback([weak, child] {
        auto state = weak.lock();
        if (state && !child->cancelled() && child->has_exception()) state->on_child_failed(child);
    });
}

void TaskGroup::cancel() {
    State& g = *state_;
    if (g.finished_all || (g.exiting && g.live == 0) || g.aborting) return;
    g.abort();
    if (g.parent && !g.parent_cancel_requested && !g.parent.done()) {
        g.parent_cancel_requested = true;
        g.parent.cancel("TaskGroup.cancel()");
    }
}

void TaskGroup::join() { exit(nullptr); }

void TaskGroup::exit(std::exception_ptr body_error) {
    State& g = *state_;
    if (g.finished_all) throw InvalidStateError("TaskGroup::join: the group is finished");
    g.exiting = true;
    std::exception_ptr base_error;
    bool body_cancelled = false;
    if (body_error) {
        try {
            std::rethrow_exception(body_error);
        } catch (const Cancelled&) {
            body_cancelled = true;
        } catch (...) {
        }
        if (is_base_error(body_error)) base_error = body_error;
        if (!g.aborting) g.abort();  // the body failed or was cancelled from outside
    }
    std::exception_ptr propagate_cancel = body_cancelled ? body_error : nullptr;
    std::exception_ptr pending_cancel;
    wait_for_children(g, "TaskGroup::join", [&] {
        pending_cancel = std::current_exception();
        if (!g.aborting) {  // cancelled from outside while waiting
            propagate_cancel = pending_cancel;
            g.abort();
        }
    });
    g.finished_all = true;

    std::vector<std::exception_ptr> errors;
    for (detail::FutureBase* child : g.finished)
        if (!child->cancelled() && child->has_exception()) {
            std::exception_ptr e = child->exception();  // counts as retrieved
            if (!base_error && is_base_error(e)) base_error = e;
            errors.push_back(std::move(e));
        }
    if (base_error) {
        // It ends the group as itself; the other failures would be lost with it.
        for (auto& e : errors)
            if (e != base_error)
                loop_->call_exception_handler(
                    {"TaskGroup task exception was not propagated because the group is "
                     "closing with a BaseException",
                     e, "TaskGroup"});
        std::rethrow_exception(base_error);
    }
    if (g.parent_cancel_requested) {
        // We cancelled the body: take that back. What is left is someone else's.
        if (g.parent.uncancel() == 0)
            propagate_cancel = nullptr;
        else if (!propagate_cancel)
            propagate_cancel = pending_cancel;
    }
    if (propagate_cancel && errors.empty()) std::rethrow_exception(propagate_cancel);
    if (body_error && !body_cancelled) errors.push_back(body_error);
    if (!errors.empty()) {
        // Errors win over an outside cancel, which is raised again at the parent's next
        // suspension (asyncio keeps the cancel count the same by uncancel + cancel).
        TaskRef self = g.parent ? g.parent : current_task();
        if (self && self.cancelling() > 0) {
            self.uncancel();
            self.cancel();
        }
        throw TaskGroupError(std::move(errors));
    }
}

}  // namespace weft
