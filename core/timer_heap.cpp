// 4-ary heap: shallower than a binary heap, so fewer cache misses per sift at 1M timers.
#include "detail/timer_heap.hpp"

namespace weft::detail {

void TimerHeap::push(TimerNode* node) {
    node->seq = next_seq_++;
    heap_.push_back(node);
    node->heap_index = uint32_t(heap_.size() - 1);
    sift_up(heap_.size() - 1);
}

void TimerHeap::remove(TimerNode* node) noexcept {
    size_t i = node->heap_index;
    node->heap_index = TimerNode::kNotQueued;
    TimerNode* last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;  // node was the last element
    place(last, i);
    if (i > 0 && earlier(last, heap_[(i - 1) / 4]))
        sift_up(i);
    else
        sift_down(i);
}

TimerNode* TimerHeap::pop() noexcept {
    TimerNode* first = heap_.front();
    remove(first);
    return first;
}

void TimerHeap::sift_up(size_t i) noexcept {
    TimerNode* node = heap_[i];
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!earlier(node, heap_[parent])) break;
        place(heap_[parent], i);
        i = parent;
    }
    place(node, i);
}

void TimerHeap::sift_down(size_t i) noexcept {
    TimerNode* node = heap_[i];
    const size_t n = heap_.size();
    for (;;) {
        size_t first = i * 4 + 1;
        if (first >= n) break;
        size_t best = first;
        size_t end = first + 4 < n ? first + 4 : n;
        for (size_t c = first + 1; c < end; ++c)
            if (earlier(heap_[c], heap_[best])) best = c;
        if (!earlier(heap_[best], node)) break;
        place(heap_[best], i);
        i = best;
    }
    place(node, i);
}

}  // namespace weft::detail
