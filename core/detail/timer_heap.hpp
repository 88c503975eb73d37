// The loop's timers: an intrusive 4-ary min-heap ordered by (deadline, sequence number).
// Nodes live in their owners (a callback node, or a fiber's sleep); the heap stores only
// pointers and each node remembers its own index, so there is no allocation per timer
// beyond the array's amortised growth.
// push: O(log n); pop_due: O(log n) each; remove (cancel): O(log n); top: O(1).
// Equal deadlines fire in the order they were pushed (the sequence number breaks ties).
#pragma once

#include <cstdint>
#include <vector>

#include <weft/detail/timer_node.hpp>

namespace weft::detail {

class TimerHeap {
public:
    bool empty() const noexcept { return heap_.empty(); }
    size_t size() const noexcept { return heap_.size(); }
    TimerNode* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }
    uint64_t next_seq() const noexcept { return next_seq_; }

    void push(TimerNode* node);
    void remove(TimerNode* node) noexcept;  // node must be queued
    TimerNode* pop() noexcept;              // removes and returns the earliest node

private:
    static bool earlier(const TimerNode* a, const TimerNode* b) noexcept {
        return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
    }
    void place(TimerNode* node, size_t i) noexcept {
        heap_[i] = node;
        node->heap_index = uint32_t(i);
    }
    void sift_up(size_t i) noexcept;
    void sift_down(size_t i) noexcept;

    std::vector<TimerNode*> heap_;
    uint64_t next_seq_ = 0;
};

}  // namespace weft::detail
