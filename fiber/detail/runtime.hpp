// The fiber runtime of one loop (its LoopExtension): the stack pool, the live tasks, and
// the background work of higher layers that loop close must abandon.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/detail/loop_seam.hpp"
#include "fiber.hpp"
#include "stack.hpp"
#include <weft/loop.hpp>
#include <weft/task.hpp>
#include <weft/thread_pool.hpp>

namespace weft::detail {

// Work a higher layer leaves running on the loop with no task and maybe no user object
// behind it: a Stream still flushing its buffer after close(). Its owner links it while it
// runs and unlinks it when done. Loop close unlinks each one still linked and calls its
// abandon(), after the tasks have unwound (their clean-up may start more), before the loop
// reports the timers that never ran: abandon() must cancel its timers and release its fds
// and watches, and may free the object (the runtime does not touch it afterwards).
// Loop thread only.
class Background {
public:
    virtual void abandon() noexcept = 0;
    bool linked() const noexcept { return linked_; }

protected:
    ~Background() = default;

private:
    friend class FiberRuntime;
    Background* prev_ = nullptr;
    Background* next_ = nullptr;
    bool linked_ = false;
};

// Per-loop fiber state, kept by the loop as its extension.
class FiberRuntime final : public LoopExtension {
public:
    explicit FiberRuntime(Loop& loop) : loop_(loop) { enlist(); }
    ~FiberRuntime() override { delist(); }

    static FiberRuntime& of(Loop& loop) {
        if (auto* rt = LoopSeam::extension<FiberRuntime>(loop)) return *rt;
        auto rt = std::make_unique<FiberRuntime>(loop);
        FiberRuntime& ref = *rt;
        LoopSeam::set_extension(loop, std::move(rt));
        return ref;
    }

    void on_close(Loop& loop) override;

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

    void link(Background* b) noexcept {
        if (b->linked_) return;
        b->linked_ = true;
        b->prev_ = nullptr;
        b->next_ = background_;
        if (background_) background_->prev_ = b;
        background_ = b;
    }
    void unlink(Background* b) noexcept {
        if (!b->linked_) return;
        if (b->prev_)
            b->prev_->next_ = b->next_;
        else
            background_ = b->next_;
        if (b->next_) b->next_->prev_ = b->prev_;
        b->prev_ = b->next_ = nullptr;
        b->linked_ = false;
    }

    Loop& loop_;
    StackPool stacks;
    // Shuts every pool down and waits for the jobs that are running (asyncio's
    // shutdown_default_executor), for at most executor_shutdown_timeout; their completions
    // are then queued on the loop. A pool with jobs still running after it is reported and
    // left to them: it is never freed, as its threads still use it.
    void shutdown_executors();
    Duration executor_shutdown_timeout = std::chrono::seconds(300);  // RunOptions

    std::unique_ptr<ThreadPool> default_executor;  // created on first use, or set
    std::unique_ptr<ThreadPool> file_executor;     // files' own small pool, on first use
    std::unique_ptr<ThreadPool> resolver_executor;  // getaddrinfo's own pool, on first use
    // Default executors replaced by set_default_executor: shut down (no waiting) when
    // replaced, their threads joined at close, so replacing one never blocks the loop.
    std::vector<std::unique_ptr<ThreadPool>> replaced_executors;

    // The next of every live runtime (fiber_runtimes), for debuggers.
    FiberRuntime* next_runtime = nullptr;

private:
    void enlist();  // debug.cpp
    void delist() noexcept;

    TaskBase* tasks_ = nullptr;         // live (unfinished) tasks, newest first
    Background* background_ = nullptr;  // linked background work, newest first
};

// Every loop's fiber runtime, newest first, linked by next_runtime (guarded by a mutex in
// debug.cpp). Nothing in the program reads it: it is where a debugger, which cannot call
// into the program (not in a core file, anyway), finds every loop and task; see
// gdb/weft-gdb.py, which knows these names and fields.
extern FiberRuntime* fiber_runtimes;

// The kind of ready entry that resumes a fiber (fiber.cpp), and its debug-mode
// descriptions (debug.cpp): the task's name, and after a slow run where it now waits.
extern const ReadyKind fiber_entry;
std::string describe_fiber_entry(void* fiber, uintptr_t);
std::string locate_fiber_entry(Loop& loop, void* fiber, uintptr_t);

}  // namespace weft::detail
