// The fiber runtime of one loop (its LoopExtension): the stack pool and the live tasks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fiber.hpp"
#include "stack.hpp"
#include <weft/loop.hpp>
#include <weft/task.hpp>
#include <weft/thread_pool.hpp>

namespace weft::detail {

// Per-loop fiber state, kept by the loop as its extension.
class FiberRuntime final : public LoopExtension {
public:
    explicit FiberRuntime(Loop& loop) : loop_(loop) {}
    ~FiberRuntime() override = default;

    static FiberRuntime& of(Loop& loop) {
        // The fiber runtime is the only loop extension there is: no dynamic_cast needed.
        if (auto* rt = static_cast<FiberRuntime*>(loop.extension())) return *rt;
        auto rt = std::make_unique<FiberRuntime>(loop);
        FiberRuntime& ref = *rt;
        loop.set_extension(std::move(rt));
        return ref;
    }

    void on_close(Loop& loop) override;
    std::string describe_entry(void (*fn)(void*, uintptr_t), void* self) override;
    std::string locate_entry(void (*fn)(void*, uintptr_t), void* self) override;

    void add(TaskBase* t) noexcept {
        t->next_task = tasks_;
        if (tasks_) tasks_->prev_task = t;
        tasks_ = t;
    }
    void remove(TaskBase* t) noexcept {
        if (t->prev_task)
            t->prev_task->next_task = t->next_task;
        else
            tasks_ = t->next_task;
        if (t->next_task) t->next_task->prev_task = t->prev_task;
        t->prev_task = t->next_task = nullptr;
    }
    TaskBase* tasks() const noexcept { return tasks_; }

    Loop& loop_;
    StackPool stacks;
    std::unique_ptr<ThreadPool> default_executor;  // created on first use, or set
    std::unique_ptr<ThreadPool> file_executor;     // files' own small pool, on first use
    std::unique_ptr<ThreadPool> resolver_executor;  // getaddrinfo's own pool, on first use
    // Default executors replaced by set_default_executor: shut down (no waiting) when
    // replaced, their threads joined at close, so replacing one never blocks the loop.
    std::vector<std::unique_ptr<ThreadPool>> replaced_executors;

private:
    TaskBase* tasks_ = nullptr;  // live (unfinished) tasks, newest first
};

// The ready-entry function that resumes fibers (for debug descriptions).
bool is_fiber_entry(void (*fn)(void*, uintptr_t)) noexcept;

}  // namespace weft::detail
