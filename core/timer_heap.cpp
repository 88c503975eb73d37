// 4-ary heap: shallower than a binary heap, so fewer cache misses per sift at 1M timers.
#include "core/detail/timer_heap.hpp"

#include <cstring>
#include <new>

namespace weft::detail {

namespace {
constexpr size_t kPad = 3;  // entries before heap_[0]: see the header
}

void TimerHeap::grow() {
    size_t capacity = capacity_ == 0 ? 61 : (capacity_ + kPad) * 2 - kPad;
    size_t bytes = (capacity + kPad) * sizeof(Entry);  // a multiple of 64
    auto* raw = static_cast<Entry*>(std::aligned_alloc(64, bytes));
    if (!raw) throw std::bad_alloc();
    if (size_ > 0) std::memcpy(raw + kPad, heap_, size_ * sizeof(Entry));
    std::free(raw_);
    raw_ = raw;
    heap_ = raw + kPad;
    capacity_ = capacity;
}

void TimerHeap::push(TimerNode* node) {
    if (size_ == capacity_) [[unlikely]] grow();
    node->seq = next_seq_++;
    sift_up(size_++, Entry{node->deadline.time_since_epoch().count(), node});
}

void TimerHeap::remove(TimerNode* node) noexcept {
    size_t i = node->heap_index;
    node->heap_index = TimerNode::kNotQueued;
    Entry last = heap_[--size_];
    if (i == size_) return;  // node was the last element
    if (i > 0 && earlier(last, heap_[(i - 1) / 4]))
        sift_up(i, last);
    else
        sift_down(i, last);
}

TimerNode* TimerHeap::pop() noexcept {
    TimerNode* first = heap_[0].node;
    remove(first);
    return first;
}

// Moves the hole at i up to where e belongs, then puts e there.
void TimerHeap::sift_up(size_t i, Entry e) noexcept {
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!earlier(e, heap_[parent])) break;
        place(heap_[parent], i);
        i = parent;
    }
    place(e, i);
}

// Moves the hole at i down to where e belongs, then puts e there.
void TimerHeap::sift_down(size_t i, Entry e) noexcept {
    const size_t n = size_;
    for (;;) {
        size_t first = i * 4 + 1;
        if (first >= n) break;
        // The next level's children: whichever of these four is best, its four children
        // share one line, and asking for all four lines now overlaps their misses with
        // this level's compares instead of waiting for each level in turn.
        if (const size_t grand = first * 4 + 1; grand + 12 < n) {
            __builtin_prefetch(&heap_[grand]);
            __builtin_prefetch(&heap_[grand + 4]);
            __builtin_prefetch(&heap_[grand + 8]);
            __builtin_prefetch(&heap_[grand + 12]);
        }
        size_t best = first;
        size_t end = first + 4 < n ? first + 4 : n;
        for (size_t c = first + 1; c < end; ++c)
            if (earlier(heap_[c], heap_[best])) best = c;
        if (!earlier(heap_[best], e)) break;
        place(heap_[best], i);
        i = best;
    }
    place(e, i);
}

}  // namespace weft::detail
