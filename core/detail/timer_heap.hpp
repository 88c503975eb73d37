// The loop's timers: an intrusive 4-ary min-heap ordered by (deadline, sequence number).
// Nodes live in their owners (a callback node, or a fiber's sleep); the heap's array holds
// each node's deadline beside its pointer, so a sift compares without touching the nodes
// (at 1M timers each touch is a cache miss), and it is laid out so that the four children
// of a parent share one 64-byte line. Each node remembers its own index; there is no
// allocation per timer beyond the array's amortised growth.
// push: O(log n); pop: O(log n); remove (cancel): O(log n); top: O(1).
// Equal deadlines fire in the order they were pushed (the sequence number breaks ties).
// A node's deadline must not change while it is queued.
#pragma once

#include <cstdint>
#include <cstdlib>

#include <weft/detail/timer_node.hpp>

namespace weft::detail {

class TimerHeap {
public:
    TimerHeap() = default;
    ~TimerHeap() { std::free(raw_); }
    TimerHeap(const TimerHeap&) = delete;
    TimerHeap& operator=(const TimerHeap&) = delete;

    bool empty() const noexcept { return size_ == 0; }
    size_t size() const noexcept { return size_; }
    TimerNode* top() const noexcept { return size_ == 0 ? nullptr : heap_[0].node; }
    uint64_t next_seq() const noexcept { return next_seq_; }

    void push(TimerNode* node);             // throws std::bad_alloc (the node is not queued)
    void remove(TimerNode* node) noexcept;  // node must be queued
    TimerNode* pop() noexcept;              // removes and returns the earliest node

private:
    struct Entry {
        int64_t when;  // node->deadline, in the clock's ticks
        TimerNode* node;
    };
    static bool earlier(const Entry& a, const Entry& b) noexcept {
        return a.when < b.when || (a.when == b.when && a.node->seq < b.node->seq);
    }
    void place(const Entry& e, size_t i) noexcept {
        heap_[i] = e;
        e.node->heap_index = uint32_t(i);
    }
    void sift_up(size_t i, Entry e) noexcept;
    void sift_down(size_t i, Entry e) noexcept;
    [[gnu::noinline]] void grow();

    // heap_ = raw_ + 3 entries: with raw_ 64-byte aligned, heap_[1] starts a line, and so
    // does every group of children 4i+1 .. 4i+4.
    Entry* raw_ = nullptr;
    Entry* heap_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
    uint64_t next_seq_ = 0;
};

}  // namespace weft::detail
