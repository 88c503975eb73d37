// Fiber benchmarks. BM_ContextSwitch is the floor: a raw Boost.Context round trip with
// nothing else; the others measure weft's fibers on a loop. Names are stable.
#include <boost/context/detail/fcontext.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include <benchmark/benchmark.h>
#include <weft/weft.hpp>

namespace bc = boost::context::detail;

// One round trip = two switches (into the context and back).
static void BM_ContextSwitch(benchmark::State& state) {
    const size_t size = 64 * 1024;
    void* stack = std::malloc(size);
    auto body = [](bc::transfer_t t) {
        for (;;) t = bc::jump_fcontext(t.fctx, nullptr);
    };
    bc::fcontext_t ctx = bc::make_fcontext(static_cast<char*>(stack) + size, size, body);
    for (auto _ : state) ctx = bc::jump_fcontext(ctx, nullptr).fctx;
    state.SetItemsProcessed(state.iterations());
    std::free(stack);
}
BENCHMARK(BM_ContextSwitch);

// The fiber benchmarks run on one long-lived loop (weft::run around the timing loop), as
// a server's loop would be: its stack pool is warm after the first iteration.

// Two fibers ping-pong through sleep(0): one item = one yield (suspend + resume).
static void BM_FiberYield(benchmark::State& state) {
    const int n = 100'000;
    weft::run([&] {
        for (auto _ : state) {
            auto a = weft::spawn([n] {
                for (int i = 0; i < n; ++i) weft::sleep(weft::Duration::zero());
            });
            for (int i = 0; i < n; ++i) weft::sleep(weft::Duration::zero());
            a.get();
        }
    });
    state.SetItemsProcessed(state.iterations() * 2 * n);
}
BENCHMARK(BM_FiberYield)->Unit(benchmark::kMillisecond);

// Spawn a trivial task and await it: task + fiber + pooled stack + two switches.
static void BM_SpawnJoin(benchmark::State& state) {
    weft::run([&] {
        for (auto _ : state) benchmark::DoNotOptimize(weft::spawn([] { return 1; }).get());
    });
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoin);

// The same with a ContextVar set: the task shares its creator's Context (one reference
// taken at spawn, dropped when its fiber ends), and the child reads the variable.
static void BM_SpawnJoinInContext(benchmark::State& state) {
    static weft::ContextVar<int> request("request");
    weft::run([&] {
        request.set(1);
        for (auto _ : state)
            benchmark::DoNotOptimize(weft::spawn([] { return request.get(); }).get());
    });
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoinInContext);

// A callback sets a future that a fiber awaits.
static void BM_FutureSetAwait(benchmark::State& state) {
    weft::run([&] {
        weft::Loop& loop = weft::Loop::current();
        for (auto _ : state) {
            weft::Future<int> f(loop);
            loop.call_soon([f]() mutable { f.set_result(1); });
            benchmark::DoNotOptimize(f.get());
        }
    });
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FutureSetAwait);

// gather over 10k tasks that each yield once.
static void BM_Gather10k(benchmark::State& state) {
    weft::run([&] {
        // One untimed round first fills the stack pool, so short runs (make bench QUICK=1,
        // a single iteration) measure the warm loop too, as the peers' warm-up rounds do.
        std::vector<weft::Task<void>> warm;
        for (int i = 0; i < 10'000; ++i) warm.push_back(weft::spawn([] { weft::sleep(weft::Duration::zero()); }));
        weft::gather(warm);
        warm.clear();
        for (auto _ : state) {
            std::vector<weft::Task<int>> tasks;
            tasks.reserve(10'000);
            for (int i = 0; i < 10'000; ++i)
                tasks.push_back(weft::spawn([i] {
                    weft::sleep(weft::Duration::zero());
                    return i;
                }));
            benchmark::DoNotOptimize(weft::gather(tasks));
        }
    });
    state.SetItemsProcessed(state.iterations() * 10'000);
}
BENCHMARK(BM_Gather10k)->Unit(benchmark::kMillisecond);

static long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

// Resident memory per suspended fiber, with 100k fibers asleep at once (a counter).
static void BM_IdleFiberRSS(benchmark::State& state) {
    const int n = 100'000;
    double per_fiber = 0;
    for (auto _ : state) {
        weft::RunOptions options;
        options.guard_pages = false;  // 100k guarded stacks exceed vm.max_map_count
        options.stack_size = 64 * 1024;
        weft::run([&] {
            long before = rss_bytes();
            weft::Event go;
            std::vector<weft::Task<void>> tasks;
            tasks.reserve(n);
            for (int i = 0; i < n; ++i) tasks.push_back(weft::spawn([&] { go.wait(); }));
            weft::sleep(weft::Duration::zero());  // every fiber has started and is waiting
            weft::sleep(weft::Duration::zero());
            per_fiber = double(rss_bytes() - before) / n;
            go.set();
            weft::gather(tasks);
        }, options);
    }
    state.counters["rss_bytes_per_fiber"] = per_fiber;
}
BENCHMARK(BM_IdleFiberRSS)->Unit(benchmark::kMillisecond)->Iterations(1);

// At scale, cold (make stress's 1M sleeping fibers, smaller): N fibers each sleep on their
// own timer an hour away; once all are asleep every one is cancelled and all are gathered.
// Each iteration is a whole fresh weft::run with the stress test's options, so it pays what
// a process starting N fibers pays (fresh stacks first touched, the heap grown); the Go and
// Tokio peers run the same workload in a fresh process, and bench_run.py runs this one in a
// process of its own (after the others it would reuse their freed heap: 3.9 KB per fiber
// instead of 4.5). Items: fibers; wall time. Counter
// peak_rss_bytes_per_fiber: RSS growth with all N asleep (bench_table.py's
// BM_SleepCancelRSS row).
static void BM_SleepCancel(benchmark::State& state) {
    const int n = int(state.range(0));
    double peak_per_fiber = 0;
    for (auto _ : state) {
        weft::RunOptions options;
        options.guard_pages = false;  // N guarded stacks would need 2N kernel mappings
        options.stack_size = 32 * 1024;
        long before = rss_bytes();
        int cancelled = 0;
        weft::run([&] {
            std::vector<weft::Task<void>> tasks;
            tasks.reserve(n);
            for (int i = 0; i < n; ++i) tasks.push_back(weft::spawn([&] {
                try {
                    weft::sleep(std::chrono::hours(1));
                } catch (const weft::Cancelled&) {
                    ++cancelled;
                }
            }));
            weft::sleep(weft::Duration::zero());  // every fiber has started and is asleep
            weft::sleep(weft::Duration::zero());
            peak_per_fiber = double(rss_bytes() - before) / n;
            for (auto& t : tasks) t.cancel();
            weft::gather(tasks);
        }, options);
        if (cancelled != n) state.SkipWithError("a fiber was not cancelled");
    }
    state.SetItemsProcessed(state.iterations() * n);
    state.counters["peak_rss_bytes_per_fiber"] = peak_per_fiber;
}
BENCHMARK(BM_SleepCancel)
    ->ArgName("fibers")
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

BENCHMARK_MAIN();
