// An intrusive, unbounded, lock-free multi-producer single-consumer queue (Vyukov's
// design): push is one compare-and-swap of the tail plus one store; pop is consumer-only.
// A producer preempted between its two steps leaves the queue briefly "busy": pop reports
// that, and the consumer retries, since the element is already committed.
// The consumer can seal the queue: from then on push refuses (returns false) and pop hands
// out what was pushed before, then reports empty. Sealing in the tail itself is what lets a
// producer learn, in the same atomic step that pushes, that nobody will drain its node, so
// the loop's close needs no count of producers on the submission path (issue 18).
#pragma once

#include <atomic>

#include <weft/detail/submit_node.hpp>

namespace weft::detail {

class MpscQueue {
public:
    MpscQueue() : tail_(&stub_), head_(&stub_) {}
    MpscQueue(const MpscQueue&) = delete;
    MpscQueue& operator=(const MpscQueue&) = delete;

    // Any thread. False once the queue is sealed: the node is not queued (only its own
    // next field was cleared) and stays the caller's.
    bool push(MpscNode* node) noexcept {
        node->next.store(nullptr, std::memory_order_relaxed);
        MpscNode* prev = tail_.load(std::memory_order_relaxed);
        do {
            if (prev == sealed_mark()) return false;
            // seq_cst: Inbox's wake-up protocol orders this against the loop's look below.
        } while (!tail_.compare_exchange_weak(prev, node, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
        prev->next.store(node, std::memory_order_release);
        return true;
    }

    // Consumer thread only: no push succeeds after this; pop() still hands out every node
    // pushed before (waiting out the busy states of producers between their two steps).
    void seal() noexcept {
        if (sealed_last_) return;
        sealed_last_ = tail_.exchange(sealed_mark(), std::memory_order_seq_cst);
    }
    // Any thread. seq_cst: Inbox's close handshake orders this against a waker's count.
    bool sealed() const noexcept { return tail_.load(std::memory_order_seq_cst) == sealed_mark(); }

    // Consumer thread only, before seal() (a sealed tail is never the stub, so this says
    // true from then on): false means empty (no push has begun since the last pop that
    // emptied it); true means pop() finds an item or, for a moment, busy.
    bool maybe_nonempty() const noexcept {
        return head_ != &stub_ || tail_.load(std::memory_order_seq_cst) != &stub_;
    }

    enum class Pop { item, empty, busy };

    // Consumer thread only. On Pop::item, *out is the oldest node.
    Pop pop(MpscNode** out) noexcept {
        if (sealed_last_) [[unlikely]] return pop_sealed(out);
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
        // head is the last real node: put the stub behind it to detach it. The consumer
        // seals, so the queue is open here and the push succeeds.
        (void)push(&stub_);
        next = head->next.load(std::memory_order_acquire);
        if (next == nullptr) return Pop::busy;
        head_ = next;
        *out = head;
        return Pop::item;
    }

private:
    // The tail of a sealed queue: an address no push hands out.
    MpscNode* sealed_mark() const noexcept { return const_cast<MpscNode*>(&seal_mark_); }

    // After seal(): the nodes from head_ up to sealed_last_ (the stub, wherever it sits in
    // the chain, is skipped; a null link before sealed_last_ is a producer between its steps).
    Pop pop_sealed(MpscNode** out) noexcept {
        for (;;) {
            MpscNode* head = head_;
            if (head == nullptr || (head == &stub_ && sealed_last_ == &stub_)) return Pop::empty;
            if (head == sealed_last_) {  // the last node pushed before the seal
                head_ = nullptr;
                *out = head;
                return Pop::item;
            }
            MpscNode* next = head->next.load(std::memory_order_acquire);
            if (next == nullptr) return Pop::busy;
            head_ = next;
            if (head == &stub_) continue;
            *out = head;
            return Pop::item;
        }
    }

    alignas(64) std::atomic<MpscNode*> tail_;  // any thread (compare-and-swap)
    alignas(64) MpscNode* head_;               // consumer thread only
    MpscNode* sealed_last_ = nullptr;          // consumer thread only: the tail seal() took
    MpscNode stub_;
    MpscNode seal_mark_;  // never queued: only its address is used
};

}  // namespace weft::detail
