// The loop's submission queue: the one piece of loop state other threads touch. Producers
// push onto a lock-free MPSC queue and wake the reactor only when the loop may be asleep:
// the loop says so (prepare_to_block) just before a poll that can block, and is awake
// again after it (awake). While it runs turns, producers find it awake and make no system
// call; the loop looks at the queue every turn. Shared (shared_ptr) by the Loop and every
// LoopHandle, so a handle that outlives its loop finds the inbox closed instead of a
// dangling pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "mpsc_queue.hpp"
#include "reactor.hpp"

namespace weft {
class Loop;
}

namespace weft::detail {

class Inbox {
public:
    Inbox(Loop* loop, Reactor* reactor) noexcept : loop_(loop), reactor_(reactor) {}

    // Any thread. Returns false (the node is not queued) once the inbox is closed.
    bool submit(SubmitNode* node) noexcept;

    // Loop thread: hands up to `max` queued nodes, oldest first, to each(SubmitNode*).
    // Returns true if nodes may remain (the caller should poll without blocking).
    template <class Each>
    bool drain(Each&& each, size_t max = SIZE_MAX) noexcept;

    // Loop thread: refuse new submissions and wait until no producer is waking the
    // reactor; then drain() yields what was accepted and never ran.
    void close() noexcept;
    bool closed() const noexcept { return queue_.sealed(); }
    // Loop thread, cheap: false means the queue was empty a moment ago (a producer still
    // inside submit() is seen next turn, or wakes the next blocking poll).
    bool maybe_pending() const noexcept { return queue_.maybe_nonempty(); }

    // Loop thread, just before a poll that may block: from here on producers wake the
    // reactor. False if something was submitted meanwhile: then the poll must not block.
    bool prepare_to_block() noexcept {
        // Dekker with submit(): the loop clears the flag then looks at the queue, a producer
        // pushes then looks at the flag; seq_cst on all four, so one of them sees the other.
        wake_pending_.store(false, std::memory_order_seq_cst);
        if (!queue_.maybe_nonempty()) return true;
        wake_pending_.store(true, std::memory_order_relaxed);
        return false;
    }
    // Loop thread, after that poll: awake, so producers need not wake it. (A producer that
    // reads this and skips the wake-up is seen by the next turn's drain or, at the latest,
    // by prepare_to_block's look at the queue.)
    void awake() noexcept { wake_pending_.store(true, std::memory_order_relaxed); }

    Loop* loop() const noexcept { return loop_; }  // valid while !closed()
    // How many times producers woke the reactor (for tests of the one-per-batch rule).
    uint64_t wakeups() const noexcept { return wakeups_.load(std::memory_order_relaxed); }

private:
    [[gnu::noinline]] void wake() noexcept;  // submit()'s rare path

    MpscQueue queue_;
    Loop* const loop_;         // immutable; used by LoopHandle::stop while open
    Reactor* const reactor_;   // immutable; valid while open (close waits for wakers)
    // True while the loop is awake or a wake-up is on its way; false once it may block.
    alignas(64) std::atomic<bool> wake_pending_{false};  // any thread
    alignas(64) std::atomic<int> wakers_{0};             // any thread: wake-ups in flight
    std::atomic<uint64_t> wakeups_{0};                   // any thread (relaxed: a statistic)
};

template <class Each>
bool Inbox::drain(Each&& each, size_t max) noexcept {
    for (size_t n = 0; n < max; ++n) {
        MpscNode* node;
        switch (queue_.pop(&node)) {
            case MpscQueue::Pop::item: each(static_cast<SubmitNode*>(node)); break;
            case MpscQueue::Pop::empty: return false;
            case MpscQueue::Pop::busy: return true;  // a producer is mid-push: next turn
        }
    }
    return true;
}

}  // namespace weft::detail

