// Tasks, apart from the fiber that runs them: names and numbers, cancel / uncancel and
// DeferCancellation, current_task and all_tasks, and the loop's settings for task stacks.
#include <weft/task.hpp>

#include <atomic>
#include <string>
#include <vector>

#include "fiber/detail/fiber.hpp"
#include "fiber/detail/runtime.hpp"

namespace weft::detail {

TaskBase::~TaskBase() = default;

bool TaskBase::cancel(std::string message) {
    if (done()) return false;
    cancel_requested_ = true;
    ++cancel_count_;
    cancel_request_message_ = std::move(message);
    if (fiber && fiber->state != Fiber::State::created) {
        fiber->cancel_pending = true;
        wake(fiber);
    }
    return true;
}

uint32_t TaskBase::uncancel() noexcept {
    if (cancel_count_ == 0) return 0;
    if (--cancel_count_ == 0 && fiber) fiber->cancel_pending = false;
    return cancel_count_;
}

namespace {
// Default task numbers: unique in the process, taken by each thread in blocks so that a
// spawn does not pay a locked instruction (numbers rise per thread, not across threads).
std::atomic<uint64_t> g_task_numbers{0};
constexpr uint64_t kTaskNumberBlock = 1024;
thread_local uint64_t t_next_task_number __attribute__((tls_model("initial-exec"))) = 0;
thread_local uint64_t t_task_number_end __attribute__((tls_model("initial-exec"))) = 0;

uint64_t next_task_number() noexcept {
    if (t_next_task_number == t_task_number_end) [[unlikely]] {
        t_next_task_number = g_task_numbers.fetch_add(kTaskNumberBlock, std::memory_order_relaxed) + 1;
        t_task_number_end = t_next_task_number + kTaskNumberBlock;
    }
    return t_next_task_number++;
}
}  // namespace

TaskBase::TaskBase(Loop& loop, std::string&& name) : FutureBase(loop) {
    if (name.empty())
        number_ = next_task_number();
    else
        name_ = std::move(name);
}

const std::string& TaskBase::name() const {
    if (number_ != 0 && name_.empty()) name_ = "Task-" + std::to_string(number_);
    return name_;
}

void TaskBase::set_name(std::string name) {
    name_ = std::move(name);
    number_ = 0;
}

}  // namespace weft::detail

namespace weft {

TaskRef current_task() noexcept {
    detail::Fiber* f = detail::current_fiber();
    return f ? TaskRef(f->task) : TaskRef();
}

std::vector<TaskRef> all_tasks(Loop& loop) {
    std::vector<TaskRef> out;
    for (detail::TaskBase* t = detail::FiberRuntime::of(loop).tasks(); t; t = t->next_task)
        out.emplace_back(t);
    return out;
}

std::vector<TaskRef> all_tasks() { return all_tasks(Loop::current()); }

void set_default_stack_size(Loop& loop, size_t bytes) {
    detail::FiberRuntime::of(loop).stacks.set_default_size(bytes);
}

void set_stack_guard_pages(Loop& loop, bool on) {
    detail::FiberRuntime::of(loop).stacks.set_guard_pages(on);
}

DeferCancellation::DeferCancellation() noexcept : fiber_(detail::current_fiber()) {
    if (fiber_) ++fiber_->cancel_deferred;
}

DeferCancellation::~DeferCancellation() {
    if (fiber_) --fiber_->cancel_deferred;
}

}  // namespace weft
