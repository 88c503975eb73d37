// Core loop benchmarks. Names are stable across commits: compare results by name.
#include <weft/loop.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

// A self-rescheduling chain of call_soon callbacks: the cost of one ready-queue hop
// including the callback node's allocation.
static void BM_CallSoon(benchmark::State& state) {
    weft::Loop loop;
    for (auto _ : state) {
        const int64_t n = 100'000;
        int64_t left = n;
        struct Step {
            weft::Loop* loop;
            int64_t* left;
            void operator()() const {
                if (--*left > 0)
                    loop->call_soon(*this);
                else
                    loop->stop();
            }
        };
        loop.call_soon(Step{&loop, &left});
        loop.run_forever();
    }
    state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_CallSoon)->Unit(benchmark::kMillisecond);

// 1M timers with scattered deadlines, cancel half, fire the rest. One untimed round first
// (here and in the Asio and libuv peers): the first round grows the heap and the handle
// array into ~25 MB of fresh pages, whose first touches cost more than the timers on this
// VM (weft: 0.45 s for that round, 0.15 s for the next ones).
static void BM_CallLaterCancel(benchmark::State& state) {
    const int n = int(state.range(0));
    weft::Loop loop;
    std::vector<weft::TimerHandle> handles;
    handles.reserve(size_t(n));
    auto round = [&] {
        int fired = 0;
        auto base = loop.time();
        for (int i = 0; i < n; ++i)
            handles.push_back(loop.call_at(base + std::chrono::nanoseconds((int64_t(i) * 7919) % 1'000'000),
                                           [&fired] { ++fired; }));
        for (int i = 0; i < n; i += 2) handles[size_t(i)].cancel();
        handles.clear();
        while (fired < n / 2) loop.run_once(false);
    };
    round();
    for (auto _ : state) round();
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CallLaterCancel)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// N producer threads each submit a share of 200k callbacks; the loop runs them.
static void BM_CallSoonThreadsafe(benchmark::State& state) {
    const int producers = int(state.range(0));
    const int total = 200'000;
    for (auto _ : state) {
        weft::Loop loop;
        weft::LoopHandle handle = loop.handle();
        int ran = 0;
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back([&, p] {
                int mine = total / producers + (p < total % producers ? 1 : 0);
                for (int i = 0; i < mine; ++i)
                    handle.call_soon_threadsafe([&] {
                        if (++ran == total) loop.stop();
                    });
            });
        loop.run_forever();
        for (auto& t : threads) t.join();
    }
    state.SetItemsProcessed(state.iterations() * total);
}
BENCHMARK(BM_CallSoonThreadsafe)->Arg(1)->Arg(2)->ArgName("producers")
    ->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
