// TaskGroup: children, the failure rule (first failure cancels the rest), joining.
#include <weft/task_group.hpp>

#include <weft/combinators.hpp>

namespace weft {

namespace {
std::string describe_errors(const std::vector<std::exception_ptr>& errors) {
    std::string what = std::to_string(errors.size()) + " task(s) of the group failed:";
    for (const auto& e : errors) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            what += std::string(" [") + x.what() + "]";
        } catch (...) {
            what += " [non-standard exception]";
        }
    }
    return what;
}
}  // namespace

TaskGroupError::TaskGroupError(std::vector<std::exception_ptr> errors)
    : Error(std::make_error_code(std::errc::operation_canceled), describe_errors(errors)),
      errors_(std::move(errors)) {}

struct TaskGroup::State {
    std::vector<TaskRef> children;
    bool failed = false;  // a child failed: siblings were cancelled, no new children
    bool joined = false;
};

TaskGroup::TaskGroup() : loop_(&Loop::current()), state_(std::make_shared<State>()) {}

TaskGroup::~TaskGroup() {
    if (!state_->joined) cancel_and_wait();
}

std::vector<detail::FutureBase*> TaskGroup::bases() const {
    std::vector<detail::FutureBase*> out;
    for (auto& child : state_->children) out.push_back(child.base());
    return out;
}

size_t TaskGroup::size() const noexcept { return state_->children.size(); }

void TaskGroup::check_open() const {
    if (state_->failed || state_->joined)
        throw InvalidStateError("TaskGroup::spawn: the group is shutting down");
}

void TaskGroup::adopt(const TaskRef& task) {
    state_->children.push_back(task);
    std::weak_ptr<State> weak = state_;
    detail::FutureBase* child = task.base();  // kept alive by state->children
    child->add_done_callback([weak, child] {
        auto state = weak.lock();
        if (!state || state->failed) return;
        if (!child->cancelled() && child->has_exception()) {
            state->failed = true;
            for (auto& child : state->children) child.cancel("a sibling in the TaskGroup failed");
        }
    });
}

void TaskGroup::cancel_and_wait() noexcept {
    DeferCancellation defer;  // joining children must finish even if we are cancelled
    for (auto& child : state_->children) child.cancel("TaskGroup is closing");
    try {
        detail::gather_wait(bases(), true);
    } catch (...) {  // only Cancelled can arrive here, and it is deferred
    }
    state_->joined = true;
}

void TaskGroup::join() {
    try {
        detail::gather_wait(bases(), true);
    } catch (const Cancelled&) {
        cancel_and_wait();
        throw;
    }
    state_->joined = true;
    std::vector<std::exception_ptr> errors;
    for (auto& child : state_->children)
        if (!child.cancelled() && child.base()->has_exception()) errors.push_back(child.exception());
    if (!errors.empty()) throw TaskGroupError(std::move(errors));
}

}  // namespace weft
