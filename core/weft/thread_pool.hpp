// ThreadPool (concurrent.futures.ThreadPoolExecutor): N worker threads fed by a lock-free
// MPMC queue. Idle workers park on a futex (no spinning). submit() returns a ThreadFuture;
// a job cancelled before it starts never runs. Every job submitted before shutdown either
// runs or ends cancelled (shutdown with cancel_futures) — none is silently dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/thread_future.hpp>

namespace weft {

namespace detail {
template <class T>
class MpmcQueue;

// A queued job: run() on a worker, or cancel() when shutdown cancels queued work.
class Job {
public:
    virtual ~Job() = default;
    virtual void run() noexcept = 0;
    virtual void cancel() noexcept = 0;
    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;
};

template <class R, class Fn>
class FutureJob final : public Job {
public:
    FutureJob(ThreadFuture<R> future, Fn fn) : future_(std::move(future)), fn_(std::move(fn)) {}
    void run() noexcept override {
        if (!future_.set_running_or_notify_cancel()) return;  // cancelled while queued
        try {
            if constexpr (std::is_void_v<R>) {
                fn_();
                future_.set_result();
            } else {
                future_.set_result(fn_());
            }
        } catch (...) {
            future_.set_exception(std::current_exception());
        }
    }
    void cancel() noexcept override { future_.cancel(); }

private:
    ThreadFuture<R> future_;
    Fn fn_;
};
}  // namespace detail

class ThreadPool {
public:
    // workers == 0: default_workers().
    explicit ThreadPool(size_t workers = 0);
    ~ThreadPool();  // shutdown(wait = true)
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Any thread. Runs fn(args...) on a worker; InvalidStateError after shutdown.
    template <class F, class... Args>
    auto submit(F&& fn, Args&&... args) {
        auto call = [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable {
            return std::invoke(fn, args...);
        };
        using R = std::invoke_result_t<decltype(call)&>;
        ThreadFuture<R> future;
        enqueue(new detail::FutureJob<R, decltype(call)>(future, std::move(call)));
        return future;
    }

    // concurrent.futures' shutdown: refuse new jobs; cancel_futures cancels the queued
    // ones (their futures end cancelled); wait joins the workers after the rest ran.
    void shutdown(bool wait = true, bool cancel_futures = false);
    // After shutdown: waits until every worker has ended or `deadline` passes; true when
    // they all ended (they are then joined). A job still running past it is left to finish
    // on its own; the pool must then outlive its threads (weft::run leaks such a pool).
    bool join_until(std::chrono::steady_clock::time_point deadline);
    // After join_until gave up: lets the workers go on without anyone joining them (the
    // pool must then never be freed: they still use it).
    void detach_workers() noexcept;
    // Jobs running on a worker now (not queued ones).
    size_t running_jobs() const noexcept { return running_.load(std::memory_order_relaxed); }
    // The number of worker threads: ThreadPoolExecutor's max_workers (weft starts them
    // all with the pool).
    size_t size() const noexcept { return workers_.size(); }
    // ThreadPoolExecutor's default max_workers: min(32, hardware threads + 4). The pool is
    // for blocking calls, so it has more threads than cores, but not hundreds.
    static size_t default_workers() noexcept;

private:
    void enqueue(detail::Job* job);  // takes ownership, also on throw
    void work() noexcept;
    detail::Job* next_job() noexcept;

    std::unique_ptr<detail::MpmcQueue<detail::Job*>> queue_;
    std::vector<std::thread> workers_;       // immutable after construction (joined once)
    alignas(64) std::atomic<uint32_t> epoch_{0};  // bumped per submission; workers park on it
    alignas(64) std::atomic<int> sleepers_{0};    // workers parked or about to park
    std::atomic<int> submitting_{0};              // submit() calls in flight
    std::atomic<bool> closed_{false};             // no new jobs
    std::atomic<bool> joined_{false};
    std::atomic<size_t> running_{0};              // jobs in run() now
    std::mutex exit_mutex_;                       // guards exited_
    std::condition_variable exited_cv_;
    size_t exited_ = 0;                           // workers that have left work()
};

}  // namespace weft
