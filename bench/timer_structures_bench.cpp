// Timer data structures head to head, without a Loop: weft's intrusive 4-ary heap
// (core/detail/timer_heap.hpp) against a hierarchical timing wheel (bench/timer_wheel.hpp),
// on the same deadlines. Names are stable across commits: compare results by name.
// Both structures get the same virtual clock: the heap sees ns deadlines and pops everything
// <= now; the wheel sees the same deadlines rounded up to 1 ms ticks, so at every 1 ms step
// both have fired exactly the same set of timers.
#include "core/detail/timer_heap.hpp"

#include "timer_wheel.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

namespace {

using weft::bench::TimerWheel;
using weft::bench::WheelNode;
using weft::detail::TimerHeap;
using weft::detail::TimerNode;
using TimePoint = std::chrono::steady_clock::time_point;

constexpr int64_t kSpanNs = 10'000'000'000;  // deadlines scattered over 0..10 s
constexpr int64_t kTickNs = 1'000'000;       // wheel tick and virtual-time step: 1 ms

int64_t g_fired = 0;  // both fire functions count here (an indirect call, as in the loop)
void count_heap(TimerNode*) { ++g_fired; }
void count_wheel(WheelNode*) { ++g_fired; }

// Fixed seed: every run, and both structures, see the same deadlines.
std::vector<int64_t> scattered_ns(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> dist(0, kSpanNs - 1);
    std::vector<int64_t> out(n);
    for (auto& ns : out) ns = dist(rng);
    return out;
}

std::vector<uint32_t> shuffled_indices(size_t n, uint64_t seed) {
    std::vector<uint32_t> out(n);
    std::iota(out.begin(), out.end(), 0u);
    std::shuffle(out.begin(), out.end(), std::mt19937_64(seed));
    return out;
}

TimePoint to_time_point(int64_t ns) { return TimePoint(std::chrono::nanoseconds(ns)); }
uint64_t to_tick(int64_t ns) { return uint64_t((ns + kTickNs - 1) / kTickNs); }  // never early

// Insert N, cancel every other one, then step virtual time by 1 ms until all have fired.
void BM_TimerHeap_ScheduleCancelHalfFire(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    const std::vector<int64_t> deadlines = scattered_ns(n, 42);
    std::vector<TimerNode> nodes(n);
    for (size_t i = 0; i < n; ++i) {
        nodes[i].deadline = to_time_point(deadlines[i]);
        nodes[i].fire = count_heap;
    }
    TimerHeap heap;  // outlives iterations, like the loop's: its array growth is amortised
    for (auto _ : state) {
        g_fired = 0;
        for (TimerNode& node : nodes) heap.push(&node);
        for (size_t i = 0; i < n; i += 2) heap.remove(&nodes[i]);
        for (int64_t now = kTickNs; !heap.empty(); now += kTickNs) {
            const TimePoint now_tp = to_time_point(now);
            while (!heap.empty() && heap.top()->deadline <= now_tp) {
                TimerNode* node = heap.pop();
                node->fire(node);
            }
        }
        if (g_fired != int64_t(n / 2)) {
            state.SkipWithError("heap fired the wrong number of timers");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * int64_t(n));
}

void BM_TimerWheel_ScheduleCancelHalfFire(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    const std::vector<int64_t> deadlines = scattered_ns(n, 42);
    std::vector<uint64_t> ticks(n);
    for (size_t i = 0; i < n; ++i) ticks[i] = to_tick(deadlines[i]);
    std::vector<WheelNode> nodes(n);
    for (WheelNode& node : nodes) node.fire = count_wheel;
    for (auto _ : state) {
        TimerWheel wheel;  // virtual time restarts at tick 0 (construction: 321 list heads)
        g_fired = 0;
        for (size_t i = 0; i < n; ++i) {
            nodes[i].deadline_tick = ticks[i];  // insert() may have rounded tick 0 up to 1
            wheel.insert(&nodes[i]);
        }
        for (size_t i = 0; i < n; i += 2) wheel.cancel(&nodes[i]);
        for (uint64_t now = 1; wheel.size() != 0; ++now) wheel.advance(now);
        if (g_fired != int64_t(n / 2)) {
            state.SkipWithError("wheel fired the wrong number of timers");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * int64_t(n));
}

// With N timers pending, one "reset an idle timeout": cancel a random pending timer and
// insert it again with a new deadline (also scattered over 0..10 s), so N stays constant.
// Random victims, as connections' timeouts are reset in no particular order.
void BM_TimerHeap_ChurnAt(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    const std::vector<int64_t> initial = scattered_ns(n, 42);
    const std::vector<int64_t> fresh = scattered_ns(n, 7);
    const std::vector<uint32_t> victims = shuffled_indices(n, 99);
    std::vector<TimerNode> nodes(n);
    TimerHeap heap;
    for (size_t i = 0; i < n; ++i) {
        nodes[i].deadline = to_time_point(initial[i]);
        nodes[i].fire = count_heap;
        heap.push(&nodes[i]);
    }
    size_t k = 0;
    for (auto _ : state) {
        TimerNode* node = &nodes[victims[k]];
        heap.remove(node);
        node->deadline = to_time_point(fresh[k]);
        heap.push(node);
        if (++k == n) k = 0;
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_TimerWheel_ChurnAt(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    const std::vector<int64_t> initial = scattered_ns(n, 42);
    const std::vector<int64_t> fresh_ns = scattered_ns(n, 7);
    std::vector<uint64_t> fresh(n);
    for (size_t i = 0; i < n; ++i) fresh[i] = to_tick(fresh_ns[i]);
    const std::vector<uint32_t> victims = shuffled_indices(n, 99);
    std::vector<WheelNode> nodes(n);
    TimerWheel wheel;
    for (size_t i = 0; i < n; ++i) {
        nodes[i].deadline_tick = to_tick(initial[i]);
        nodes[i].fire = count_wheel;
        wheel.insert(&nodes[i]);
    }
    size_t k = 0;
    for (auto _ : state) {
        WheelNode* node = &nodes[victims[k]];
        wheel.cancel(node);
        node->deadline_tick = fresh[k];
        wheel.insert(node);
        if (++k == n) k = 0;
    }
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_TimerHeap_ScheduleCancelHalfFire)
    ->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TimerWheel_ScheduleCancelHalfFire)
    ->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TimerHeap_ChurnAt)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_TimerWheel_ChurnAt)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

BENCHMARK_MAIN();
