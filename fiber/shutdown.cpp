// What a loop's close does to its fiber runtime: the executors shut down (with a bounded
// wait), unfinished tasks reported and unwound, background work abandoned.
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fiber/detail/fiber.hpp"
#include "fiber/detail/runtime.hpp"
#include <weft/deadline.hpp>
#include <weft/task.hpp>
#include <weft/thread_pool.hpp>

namespace weft::detail {

namespace {
// Pools whose jobs outlived the shutdown wait: their threads still use them, so they are
// never freed; kept here, reachable (leak checkers), until the process ends.
void abandon_pool(std::unique_ptr<ThreadPool> pool) {
    static std::mutex mutex;
    static auto* abandoned = new std::vector<std::unique_ptr<ThreadPool>>;
    std::lock_guard lock(mutex);
    abandoned->push_back(std::move(pool));
}
}  // namespace

void FiberRuntime::shutdown_executors() {
    struct Pool {
        std::unique_ptr<ThreadPool>* pool;
        const char* name;
    };
    std::vector<Pool> pools{{&default_executor, "the default executor"},
                            {&file_executor, "the file executor"},
                            {&resolver_executor, "the resolver executor"}};
    for (auto& replaced : replaced_executors) pools.push_back({&replaced, "a replaced default executor"});
    for (Pool& p : pools)
        if (*p.pool) (*p.pool)->shutdown(false, false);  // all refuse new work at once
    const TimePoint deadline = deadline_after(executor_shutdown_timeout, Clock::now());
    for (Pool& p : pools) {
        ThreadPool* pool = p.pool->get();
        if (!pool || pool->join_until(deadline)) continue;
        // asyncio.run warns "The executor did not finishing joining its threads within N
        // seconds" and goes on; so does weft. The jobs end on their own; what they post
        // back once the loop is closed is dropped.
        char waited[32];
        std::snprintf(waited, sizeof waited, "%.3g s",
                      std::chrono::duration<double>(executor_shutdown_timeout).count());
        loop_.call_exception_handler({std::string(p.name) + " did not finish within " + waited +
                                          ": " + std::to_string(pool->running_jobs()) +
                                          " job(s) still running; not waiting for them any longer",
                                      nullptr, "executor shutdown"});
        pool->detach_workers();
        abandon_pool(std::move(*p.pool));
    }
}

// At close, unfinished tasks are reported and unwound: each is cancelled and resumed
// directly (the loop no longer runs) until its fiber ends, so destructors on its stack run.
void FiberRuntime::on_close(Loop& loop) {
    // Jobs still running finish first (their results are dropped with the loop), as
    // asyncio's shutdown_default_executor does.
    shutdown_executors();
    while (TaskBase* t = tasks_) {
        Ref<TaskBase> keep(t);
        loop.call_exception_handler(
            {"Task was destroyed but it is pending: " + t->describe(), nullptr, t->describe()});
        t->cancel("event loop closed");
        for (int round = 0; round < 100 && t->fiber; ++round) {
            Fiber* f = t->fiber;
            if (f->state != Fiber::State::created) {  // a fiber never started just ends
                f->cancel_pending = true;
                // suspended, or scheduled already (woken, or yielding while it unwinds)
                if (f->state != Fiber::State::scheduled) set_state(f, Fiber::State::scheduled);
            }
            run_fiber_now(f);
        }
        if (t->fiber) {  // it refuses to end: give up on it, without freeing a live stack
            loop.call_exception_handler(
                {"Task ignored cancellation at loop close; its stack is leaked", nullptr,
                 t->describe()});
            remove(t);
            t->fiber = nullptr;
        }
    }
    // What the loop was still doing for nobody (a closed stream's flush) ends here; the
    // tasks' unwinding above may have started some of it.
    while (Background* b = background_) {
        unlink(b);
        b->abandon();
    }
}

}  // namespace weft::detail
