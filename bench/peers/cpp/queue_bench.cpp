// Floors for BM_CallSoonThreadsafe: N producer threads hand 200k callbacks to one consumer
// thread through a bare queue, with no wake-up (the consumer spins) and no allocation per
// item. std::mutex + std::deque, and moodycamel::ConcurrentQueue when installed.
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#ifdef WEFT_BENCH_MOODYCAMEL
#include <concurrentqueue/concurrentqueue.h>
#endif

#include <benchmark/benchmark.h>

namespace {

struct Item {
    void (*fn)(int*);
    int* arg;
};

void bump(int* ran) { ++*ran; }

struct MutexDeque {
    std::mutex m;
    std::deque<Item> q;
    void push(Item v) {
        std::lock_guard g(m);
        q.push_back(v);
    }
    bool pop(Item& v) {
        std::lock_guard g(m);
        if (q.empty()) return false;
        v = q.front();
        q.pop_front();
        return true;
    }
};

#ifdef WEFT_BENCH_MOODYCAMEL
struct Moodycamel {
    moodycamel::ConcurrentQueue<Item> q;
    void push(Item v) { q.enqueue(v); }
    bool pop(Item& v) { return q.try_dequeue(v); }
};
#endif

template <class Q>
void run(benchmark::State& state) {
    const int producers = int(state.range(0)), total = 200'000;
    for (auto _ : state) {
        Q q;
        int ran = 0;
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back([&, p] {
                int mine = total / producers + (p < total % producers ? 1 : 0);
                for (int i = 0; i < mine; ++i) q.push(Item{bump, &ran});
            });
        Item item;
        while (ran < total)
            if (q.pop(item)) item.fn(item.arg);
        for (auto& t : threads) t.join();
    }
    state.SetItemsProcessed(state.iterations() * total);
}

}  // namespace

static void BM_CallSoonThreadsafe_MutexDeque(benchmark::State& state) { run<MutexDeque>(state); }
BENCHMARK(BM_CallSoonThreadsafe_MutexDeque)->Arg(1)->Arg(2)->ArgName("producers")
    ->UseRealTime()->Unit(benchmark::kMillisecond);

#ifdef WEFT_BENCH_MOODYCAMEL
static void BM_CallSoonThreadsafe_Moodycamel(benchmark::State& state) { run<Moodycamel>(state); }
BENCHMARK(BM_CallSoonThreadsafe_Moodycamel)->Arg(1)->Arg(2)->ArgName("producers")
    ->UseRealTime()->Unit(benchmark::kMillisecond);
#endif

BENCHMARK_MAIN();
