// The loop's submission queue: the one piece of loop state other threads touch. Producers
// push onto a lock-free MPSC queue and wake the reactor at most once per batch; the loop
// drains it after every poll. Shared (shared_ptr) by the Loop and every LoopHandle, so a
// handle that outlives its loop finds the inbox closed instead of a dangling pointer.
#pragma once

#include <atomic>
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

    // Loop thread: hands every queued node, oldest first, to each(SubmitNode*).
    template <class Each>
    void drain(Each&& each) noexcept;

    // Loop thread: refuse new submissions and wait for in-flight ones to land; then
    // drain() yields what was accepted and never ran.
    void close() noexcept;
    bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    Loop* loop() const noexcept { return loop_; }  // valid while !closed()

private:
    MpscQueue queue_;
    Loop* const loop_;         // immutable; used by LoopHandle::stop while open
    Reactor* const reactor_;   // immutable; valid while open (close waits for producers)
    alignas(64) std::atomic<bool> wake_pending_{false};  // any thread
    alignas(64) std::atomic<int> producers_{0};          // any thread: submits in flight
    std::atomic<bool> closed_{false};                    // set once by the loop thread
};

template <class Each>
void Inbox::drain(Each&& each) noexcept {
    // Reset first: a producer that pushes after this point wakes the next poll.
    wake_pending_.store(false, std::memory_order_seq_cst);
    for (;;) {
        MpscNode* node;
        switch (queue_.pop(&node)) {
            case MpscQueue::Pop::item: each(static_cast<SubmitNode*>(node)); break;
            case MpscQueue::Pop::empty: return;
            case MpscQueue::Pop::busy: std::this_thread::yield(); break;
        }
    }
}

}  // namespace weft::detail

