// The worker pool's job queue: a bounded lock-free multi-producer multi-consumer ring
// (Vyukov's design: one sequence number per cell, so producers and consumers claim cells
// with a single CAS each) with a mutex-guarded overflow list behind it, so the queue as a
// whole is unbounded and never refuses a job. The ring is the fast path; the overflow is
// used only when the ring is full, and consumers take from it when the ring is empty.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace weft::detail {

template <class T>  // T: a pointer type
class MpmcQueue {
public:
    explicit MpmcQueue(size_t capacity_pow2 = 1 << 14)
        : mask_(capacity_pow2 - 1), cells_(new Cell[capacity_pow2]) {
        for (size_t i = 0; i < capacity_pow2; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
    }
    MpmcQueue(const MpmcQueue&) = delete;
    MpmcQueue& operator=(const MpmcQueue&) = delete;

    // Any thread. Never fails.
    void push(T item) {
        if (try_push_ring(item)) return;
        std::lock_guard lock(overflow_mutex_);
        overflow_.push_back(item);
        overflow_size_.fetch_add(1, std::memory_order_release);
    }

    // Any thread. False if empty.
    bool pop(T& out) {
        if (try_pop_ring(out)) return true;
        if (overflow_size_.load(std::memory_order_acquire) == 0) return false;
        std::lock_guard lock(overflow_mutex_);
        if (overflow_.empty()) return false;
        out = overflow_.front();
        overflow_.pop_front();
        overflow_size_.fetch_sub(1, std::memory_order_release);
        return true;
    }

private:
    struct Cell {
        std::atomic<size_t> seq;
        T item;
    };

    bool try_push_ring(T item) {
        size_t pos = enqueue_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& c = cells_[pos & mask_];
            size_t seq = c.seq.load(std::memory_order_acquire);
            intptr_t diff = intptr_t(seq) - intptr_t(pos);
            if (diff == 0) {
                if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    c.item = item;
                    c.seq.store(pos + 1, std::memory_order_release);
                    return true;
                }
            } else if (diff < 0) {
                return false;  // full
            } else {
                pos = enqueue_.load(std::memory_order_relaxed);
            }
        }
    }

    bool try_pop_ring(T& out) {
        size_t pos = dequeue_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& c = cells_[pos & mask_];
            size_t seq = c.seq.load(std::memory_order_acquire);
            intptr_t diff = intptr_t(seq) - intptr_t(pos + 1);
            if (diff == 0) {
                if (dequeue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    out = c.item;
                    c.seq.store(pos + mask_ + 1, std::memory_order_release);
                    return true;
                }
            } else if (diff < 0) {
                return false;  // empty
            } else {
                pos = dequeue_.load(std::memory_order_relaxed);
            }
        }
    }

    const size_t mask_;
    std::unique_ptr<Cell[]> cells_;
    alignas(64) std::atomic<size_t> enqueue_{0};  // any thread
    alignas(64) std::atomic<size_t> dequeue_{0};  // any thread
    alignas(64) std::atomic<size_t> overflow_size_{0};
    std::mutex overflow_mutex_;
    std::deque<T> overflow_;  // guarded by overflow_mutex_
};

}  // namespace weft::detail
