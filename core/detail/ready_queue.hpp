// The loop's ready queue: a FIFO ring of entries (kind, self, arg), grown by doubling and
// never shrunk. Every callback, I/O dispatch, signal, submission and fiber wake-up passes
// through it, so push() must stay a store and an increment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace weft {
class Loop;
}

namespace weft::detail {

// What a kind of ready entry does, in one constant table per kind (a callback, a
// submission from another thread, an I/O dispatch, a signal, a fiber's resumption):
// adding a kind is writing one of these, and the loop never asks an entry what it is.
struct ReadyKind {
    // Runs the entry (the ready step, or a fiber handing the thread over).
    void (*run)(void* self, uintptr_t arg);
    // Debug mode, before it runs: what it is ("callback file:line (function)").
    std::string (*describe)(void* self, uintptr_t arg);
    // Debug mode, after a slow run: where it is now, or "" when describe() said it all.
    // May be null. self may have been freed by the run: check before touching it.
    std::string (*locate)(Loop& loop, void* self, uintptr_t arg);
    // Loop close: frees it without running it; returns what to report as never run, or ""
    // when its loss needs no report (an I/O dispatch whose watch is gone anyway).
    std::string (*discard)(void* self, uintptr_t arg);
};

struct ReadyEntry {
    const ReadyKind* kind;
    void* self;
    uintptr_t arg;
};

class ReadyQueue {
public:
    bool empty() const noexcept { return head_ == tail_; }
    size_t size() const noexcept { return size_t(tail_ - head_); }
    void push(ReadyEntry e) {
        if (size() == capacity_) [[unlikely]] grow();
        ring_[tail_++ & mask_] = e;
    }
    ReadyEntry pop() noexcept { return ring_[head_++ & mask_]; }
    void drop_front() noexcept { ++head_; }
    const ReadyEntry& front() const noexcept { return ring_[head_ & mask_]; }

private:
    // Out of line: it runs once per doubling, and every fiber wake-up goes through push().
    [[gnu::noinline]] void grow() {
        std::vector<ReadyEntry> bigger(ring_.empty() ? 64 : ring_.size() * 2);
        size_t n = size();
        for (size_t i = 0; i < n; ++i) bigger[i] = ring_[(head_ + i) & mask_];
        ring_.swap(bigger);
        capacity_ = ring_.size();
        mask_ = capacity_ - 1;
        head_ = 0;
        tail_ = n;
    }
    std::vector<ReadyEntry> ring_;
    size_t capacity_ = 0;  // ring_.size(), kept apart to spare push() a division
    size_t mask_ = 0;
    uint64_t head_ = 0, tail_ = 0;
};

}  // namespace weft::detail
