// An intrusive, unbounded, lock-free multi-producer single-consumer queue (Vyukov's
// design): push is one atomic exchange plus one store, wait-free; pop is consumer-only.
// A producer preempted between its two steps leaves the queue briefly "busy": pop reports
// that, and the consumer retries, since the element is already committed.
#pragma once

#include <atomic>

#include <weft/detail/submit_node.hpp>

namespace weft::detail {

class MpscQueue {
public:
    MpscQueue() : tail_(&stub_), head_(&stub_) {}
    MpscQueue(const MpscQueue&) = delete;
    MpscQueue& operator=(const MpscQueue&) = delete;

    // Any thread.
    void push(MpscNode* node) noexcept {
        node->next.store(nullptr, std::memory_order_relaxed);
        // seq_cst: Inbox's wake-up protocol orders this against the loop's look below.
        MpscNode* prev = tail_.exchange(node, std::memory_order_seq_cst);
        prev->next.store(node, std::memory_order_release);
    }

    // Consumer thread only: false means empty (no push has begun since the last pop that
    // emptied it); true means pop() finds an item or, for a moment, busy.
    bool maybe_nonempty() const noexcept {
        return head_ != &stub_ || tail_.load(std::memory_order_seq_cst) != &stub_;
    }

    enum class Pop { item, empty, busy };

    // Consumer thread only. On Pop::item, *out is the oldest node.
    Pop pop(MpscNode** out) noexcept {
        MpscNode* head = head_;
        MpscNode* next = head->next.load(std::memory_order_acquire);
        if (head == &stub_) {
            if (next == nullptr)
                return tail_.load(std::memory_order_acquire) == &stub_ ? Pop::empty : Pop::busy;
            head_ = head = next;
            next = next->next.load(std::memory_order_acquire);
        }
        if (next != nullptr) {
            head_ = next;
            *out = head;
            return Pop::item;
        }
        if (tail_.load(std::memory_order_acquire) != head) return Pop::busy;
        push(&stub_);  // head is the last real node: put the stub behind it to detach it
        next = head->next.load(std::memory_order_acquire);
        if (next == nullptr) return Pop::busy;
        head_ = next;
        *out = head;
        return Pop::item;
    }

private:
    alignas(64) std::atomic<MpscNode*> tail_;  // any thread (atomic exchange)
    alignas(64) MpscNode* head_;               // consumer thread only
    MpscNode stub_;
};

}  // namespace weft::detail
