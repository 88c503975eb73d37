// Boost.Fiber running weft's fiber workloads for the `make bench` table: yield ping-pong,
// spawn+join, and RSS per suspended fiber. Default round-robin scheduler, one thread.
// Spawn+join uses the pooled stack allocator, as weft pools its stacks.
#include <unistd.h>

#include <fstream>
#include <vector>

#include <boost/fiber/all.hpp>

#include <benchmark/benchmark.h>

namespace fibers = boost::fibers;

// The main fiber and one other each yield n times: one item = one yield.
static void BM_FiberYield_BoostFiber(benchmark::State& state) {
    const int n = 100'000;
    for (auto _ : state) {
        fibers::fiber other([n] {
            for (int i = 0; i < n; ++i) boost::this_fiber::yield();
        });
        for (int i = 0; i < n; ++i) boost::this_fiber::yield();
        other.join();
    }
    state.SetItemsProcessed(state.iterations() * 2 * n);
}
BENCHMARK(BM_FiberYield_BoostFiber)->Unit(benchmark::kMillisecond);

// Start a trivial fiber and join it.
static void BM_SpawnJoin_BoostFiber(benchmark::State& state) {
    boost::fibers::pooled_fixedsize_stack stacks;
    for (auto _ : state) {
        int result = 0;
        fibers::fiber f(std::allocator_arg, stacks, [&result] { result = 1; });
        f.join();
        benchmark::DoNotOptimize(result);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoin_BoostFiber);

static long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

// Resident memory per suspended fiber: 100k fibers waiting on one condition variable
// (default fixed-size stacks, 64 KiB of address space each, touched only as used).
static void BM_IdleFiberRSS_BoostFiber(benchmark::State& state) {
    const int n = 100'000;
    double per = 0;
    for (auto _ : state) {
        fibers::mutex m;
        fibers::condition_variable cv;
        bool go = false;
        std::vector<fibers::fiber> all;
        all.reserve(n);
        long before = rss_bytes();
        for (int i = 0; i < n; ++i)
            all.emplace_back(std::allocator_arg, boost::fibers::fixedsize_stack(64 * 1024), [&] {
                std::unique_lock lock(m);
                cv.wait(lock, [&] { return go; });
            });
        boost::this_fiber::yield();  // every fiber has started and is waiting
        per = double(rss_bytes() - before) / n;
        {
            std::unique_lock lock(m);
            go = true;
        }
        cv.notify_all();
        for (auto& f : all) f.join();
    }
    state.counters["rss_bytes_per_fiber"] = per;
}
BENCHMARK(BM_IdleFiberRSS_BoostFiber)->Unit(benchmark::kMillisecond)->Iterations(1);

BENCHMARK_MAIN();
