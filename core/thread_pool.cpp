// ThreadPool: workers pop from the MPMC queue and park on `epoch_` when it is empty.
// Parking protocol: a worker announces itself in sleepers_, reads epoch_, re-checks the
// queue and only then waits for epoch_ to change; a producer pushes, bumps epoch_ and
// notifies if anyone announced itself. Either the worker sees the job or the producer
// sees the sleeper, so no wake-up is lost.
#include <weft/thread_pool.hpp>

#include "core/detail/block_alloc.hpp"

#include <algorithm>
#include <chrono>
#include <new>

#include "core/detail/mpmc_queue.hpp"
#include "core/detail/platform.hpp"

namespace weft {

void* detail::Job::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void detail::Job::operator delete(void* p) noexcept { detail::free_block(p); }

size_t ThreadPool::default_workers() noexcept {
    return std::min<size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4);
}

ThreadPool::ThreadPool(size_t workers) : queue_(std::make_unique<detail::MpmcQueue<detail::Job*>>()) {
    if (workers == 0) workers = default_workers();
    workers_.reserve(workers);
    for (size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() { shutdown(true, false); }

void ThreadPool::enqueue(detail::Job* job) {
    submitting_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst)) {
        submitting_.fetch_sub(1, std::memory_order_seq_cst);
        delete job;
        throw InvalidStateError("ThreadPool::submit: the pool is shut down");
    }
    queue_->push(job);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) epoch_.notify_one();
    submitting_.fetch_sub(1, std::memory_order_seq_cst);
}

namespace {
// Before parking, look again for a short while: a job that arrives within microseconds
// (a burst, or the next step of a round trip) is then taken without a futex wake-up,
// which costs tens of microseconds on a VM. Bounded, so an idle pool still burns ~0 CPU.
constexpr auto kSpinBeforePark = std::chrono::microseconds(30);

using detail::cpu_relax;
}  // namespace

detail::Job* ThreadPool::next_job() noexcept {
    detail::Job* job = nullptr;
    for (;;) {
        if (queue_->pop(job)) return job;
        auto spin_until = std::chrono::steady_clock::now() + kSpinBeforePark;
        do {
            for (int i = 0; i < 64; ++i) cpu_relax();
            if (queue_->pop(job)) return job;
        } while (std::chrono::steady_clock::now() < spin_until && !closed_.load(std::memory_order_relaxed));
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        uint32_t seen = epoch_.load(std::memory_order_seq_cst);
        if (queue_->pop(job)) {
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
            return job;
        }
        // Closed, every in-flight submit landed, and nothing is queued: time to go.
        if (closed_.load(std::memory_order_seq_cst) && submitting_.load(std::memory_order_seq_cst) == 0 &&
            !queue_->pop(job)) {
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
            return nullptr;
        }
        if (job) {
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
            return job;
        }
        epoch_.wait(seen, std::memory_order_seq_cst);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
}

void ThreadPool::work() noexcept {
    while (detail::Job* job = next_job()) {
        running_.fetch_add(1, std::memory_order_relaxed);
        job->run();
        delete job;
        running_.fetch_sub(1, std::memory_order_relaxed);
    }
    std::lock_guard lock(exit_mutex_);
    ++exited_;
    exited_cv_.notify_all();  // under the lock: join_until may free the pool right after
}

void ThreadPool::shutdown(bool wait, bool cancel_futures) {
    closed_.store(true, std::memory_order_seq_cst);
    while (submitting_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    if (cancel_futures) {
        detail::Job* job;
        while (queue_->pop(job)) {
            job->cancel();
            delete job;
        }
    }
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    epoch_.notify_all();  // parked workers re-check and leave once the queue is empty
    if (wait && !joined_.exchange(true))
        for (auto& t : workers_) t.join();
}

void ThreadPool::detach_workers() noexcept {
    if (joined_.exchange(true)) return;
    for (auto& t : workers_) t.detach();
}

bool ThreadPool::join_until(std::chrono::steady_clock::time_point deadline) {
    if (joined_.load()) return true;
    {
        std::unique_lock lock(exit_mutex_);
        if (!exited_cv_.wait_until(lock, deadline, [&] { return exited_ == workers_.size(); }))
            return false;
    }
    if (!joined_.exchange(true))
        for (auto& t : workers_) t.join();
    return true;
}

}  // namespace weft
