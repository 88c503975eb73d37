// A hierarchical timing wheel, written only to be measured against weft's timer heap
// (core/detail/timer_heap.hpp) in timer_structures_bench.cpp. Not used by the loop.
//
// Shape: time is counted in integer ticks (the benchmark uses 1 ms). Level k has 64 slots,
// each slot covering 64^k ticks; 5 levels cover 64^5 ticks (~12.4 days at 1 ms). Deadlines
// further out wait in one overflow ("far") list that is re-sorted once per 64^5 ticks.
//
// Same intrusive spirit as the heap: each node carries its own list links, so there is no
// allocation at all (not even an array to grow), insert is O(1) and cancel is O(1) (unlink
// from a doubly-linked list). The price is paid later and in bulk: a node is moved down a
// level ("cascaded") at most kLevels - 1 times before it fires.
//
// Placement rule: a node goes to the highest level whose 6-bit digit of deadline_tick differs
// from the reference tick (the current tick), in the slot named by the deadline's digit
// there. So a node at level k shares all digits above k with `now`, and its digit k is
// greater than now's; the slot is cascaded exactly when `now` reaches that digit with all
// lower digits zero, which is never after the deadline. Timers therefore fire in the exact
// tick of their deadline, never early and never late (given advance() is called).
//
// Ordering: nodes due in the same tick fire in insertion order (slots append at the tail,
// cascades preserve list order, and two nodes with the same tick always sit in the same
// slot). Within a tick there is no finer order: sub-tick deadlines are rounded up by the
// caller, unlike the heap's exact (ns deadline, seq) order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace weft::bench {

struct WheelHook {
    WheelHook* prev = nullptr;
    WheelHook* next = nullptr;
};

struct WheelNode : WheelHook {
    static constexpr uint16_t kIdle = UINT16_MAX;

    uint64_t deadline_tick = 0;          // absolute tick; insert() rounds past ticks up to now+1
    void (*fire)(WheelNode*) = nullptr;  // called once from advance() when due
    uint16_t slot = kIdle;               // list the node is in (level * 64 + slot, or kFar)

    bool queued() const noexcept { return slot != kIdle; }
};

class TimerWheel {
public:
    static constexpr unsigned kBits = 6;
    static constexpr unsigned kSlots = 1u << kBits;
    static constexpr unsigned kLevels = 5;
    static constexpr unsigned kFar = kLevels * kSlots;  // id of the overflow list
    static constexpr uint64_t kNever = UINT64_MAX;

    explicit TimerWheel(uint64_t now_tick = 0) noexcept : now_(now_tick) {
        for (WheelHook& h : lists_) h.prev = h.next = &h;
    }
    // The list heads are self-referential, so the wheel cannot move.
    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;

    uint64_t now() const noexcept { return now_; }
    size_t size() const noexcept { return size_; }

    void insert(WheelNode* n) noexcept {  // n must be idle
        if (n->deadline_tick <= now_) n->deadline_tick = now_ + 1;  // due: fire on next tick
        place(n, now_);
        ++size_;
    }

    void cancel(WheelNode* n) noexcept {  // n must be queued
        unlink(n);
        n->slot = WheelNode::kIdle;
        --size_;
    }

    // The first tick > now() at which advance() has work to do (a fire or a cascade), from
    // the occupancy bitmaps; kNever when empty. A loop would sleep until this tick. Level 0's
    // answer is an exact deadline; a higher level's is a cascade, so a lower level's answer
    // always comes first (it shares more leading digits with now).
    uint64_t next_event_tick() const noexcept {
        for (unsigned k = 0; k < kLevels; ++k) {
            const unsigned shift = k * kBits;
            const unsigned digit = unsigned(now_ >> shift) & (kSlots - 1);
            if (digit == kSlots - 1) continue;  // no slot after now's at this level
            const uint64_t later = occupied_[k] & (~uint64_t(0) << (digit + 1));
            if (later == 0) continue;
            const uint64_t base = now_ >> (shift + kBits) << (shift + kBits);
            return base | uint64_t(std::countr_zero(later)) << shift;
        }
        if (lists_[kFar].next != &lists_[kFar]) return ((now_ >> kFarShift) + 1) << kFarShift;
        return kNever;
    }

    // Moves time forward to now_tick, firing everything due on the way. Empty stretches are
    // skipped via next_event_tick(), so the cost is per event, not per elapsed tick.
    size_t advance(uint64_t now_tick) {
        size_t fired = 0;
        while (now_ < now_tick) {
            const uint64_t t = next_event_tick();
            if (t > now_tick) {
                now_ = now_tick;
                break;
            }
            fired += run_tick(t);
        }
        return fired;
    }

private:
    static constexpr unsigned kFarShift = kLevels * kBits;

    void place(WheelNode* n, uint64_t ref) noexcept {
        const uint64_t diff = n->deadline_tick ^ ref;
        const unsigned level = diff == 0 ? 0 : unsigned(std::bit_width(diff) - 1) / kBits;
        unsigned id = kFar;
        if (level < kLevels) {
            const unsigned s = unsigned(n->deadline_tick >> (level * kBits)) & (kSlots - 1);
            id = level * kSlots + s;
            occupied_[level] |= uint64_t(1) << s;
        }
        n->slot = uint16_t(id);
        WheelHook& h = lists_[id];  // append at the tail: FIFO within the slot
        n->prev = h.prev;
        n->next = &h;
        h.prev->next = n;
        h.prev = n;
    }

    void unlink(WheelNode* n) noexcept {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        const unsigned id = n->slot;
        if (id < kFar && lists_[id].next == &lists_[id])
            occupied_[id / kSlots] &= ~(uint64_t(1) << (id % kSlots));
    }

    // Re-places every node of list `id` relative to tick t. The list is spliced out first
    // because far-list nodes can land back in the far list.
    void cascade(unsigned id, uint64_t t) noexcept {
        WheelHook& h = lists_[id];
        if (h.next == &h) return;
        WheelHook tmp{h.prev, h.next};
        tmp.next->prev = &tmp;
        tmp.prev->next = &tmp;
        h.prev = h.next = &h;
        if (id < kFar) occupied_[id / kSlots] &= ~(uint64_t(1) << (id % kSlots));
        while (tmp.next != &tmp) {
            auto* n = static_cast<WheelNode*>(tmp.next);
            tmp.next = n->next;
            n->next->prev = &tmp;
            place(n, t);  // lands on a lower level (or stays far), never back in `id`
        }
    }

    size_t run_tick(uint64_t t) {
        now_ = t;  // before firing: callbacks that insert must see the current tick
        // Level k's slot for t is due when t's lower k digits are all zero (t > 0 here).
        const unsigned zero_digits = unsigned(std::countr_zero(t)) / kBits;
        if (zero_digits >= kLevels) cascade(kFar, t);
        for (unsigned k = zero_digits < kLevels - 1 ? zero_digits : kLevels - 1; k >= 1; --k)
            cascade(k * kSlots + (unsigned(t >> (k * kBits)) & (kSlots - 1)), t);
        // Level 0's slot for t holds exactly the nodes due at t; a callback cannot add to it
        // (inserts are clamped to t + 1) but may cancel its neighbours, so pop one at a time.
        WheelHook& h = lists_[t & (kSlots - 1)];
        size_t fired = 0;
        while (h.next != &h) {
            auto* n = static_cast<WheelNode*>(h.next);
            cancel(n);
            ++fired;
            n->fire(n);
        }
        return fired;
    }

    uint64_t now_;
    size_t size_ = 0;
    uint64_t occupied_[kLevels] = {};    // bit s of level k: slot s is non-empty
    WheelHook lists_[kLevels * kSlots + 1];  // + 1: the far list
};

}  // namespace weft::bench
