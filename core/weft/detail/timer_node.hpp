// The intrusive timer node that the loop's timer heap orders (see core/detail/timer_heap.hpp).
#pragma once

#include <chrono>
#include <cstdint>

namespace weft::detail {

struct TimerNode {
    static constexpr uint32_t kNotQueued = UINT32_MAX;

    std::chrono::steady_clock::time_point deadline{};
    uint64_t seq = 0;                    // set by the heap on push: FIFO among equal deadlines
    uint32_t heap_index = kNotQueued;    // position in the heap, kNotQueued when idle
    void (*fire)(TimerNode*) = nullptr;  // called once, on the loop thread, when due

    bool queued() const noexcept { return heap_index != kNotQueued; }
};

}  // namespace weft::detail
