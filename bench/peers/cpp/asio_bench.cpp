// Boost.Asio running weft's workloads, for the `make bench` table: post (BM_CallSoon),
// steady_timer (BM_CallLaterCancel), spawn (BM_SpawnJoin, BM_FiberYield, BM_IdleFiberRSS).
// The cross-thread post and the echo server live in thread_bench and echo_servers.
// One io_context with concurrency hint 1, run by one thread, as a loop per core would be.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <benchmark/benchmark.h>

namespace asio = boost::asio;

// A self-reposting chain of 100k handlers: the peer of a call_soon chain.
static void BM_CallSoon_Asio(benchmark::State& state) {
    asio::io_context io(1);
    const int64_t n = 100'000;
    for (auto _ : state) {
        int64_t left = n;
        struct Step {
            asio::io_context* io;
            int64_t* left;
            void operator()() const {
                if (--*left > 0) asio::post(*io, *this);
            }
        };
        asio::post(io, Step{&io, &left});
        io.run();
        io.restart();
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CallSoon_Asio)->Unit(benchmark::kMillisecond);

// 1M steady_timers with scattered deadlines (within 1 ms), cancel half, fire the rest.
// As in weft's row: the timers' array is kept across rounds (1M timers are 64 MB, which
// glibc would map fresh for each round) and one untimed round warms the queue's pages.
static void BM_CallLaterCancel_Asio(benchmark::State& state) {
    const int n = int(state.range(0));
    asio::io_context io(1);
    std::vector<asio::steady_timer> timers;
    timers.reserve(size_t(n));
    auto round = [&] {
        int fired = 0;
        auto base = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) {
            timers.emplace_back(io, base + std::chrono::nanoseconds((int64_t(i) * 7919) % 1'000'000));
            timers.back().async_wait([&fired](const boost::system::error_code& ec) {
                if (!ec) ++fired;
            });
        }
        for (int i = 0; i < n; i += 2) timers[size_t(i)].cancel();
        io.run();
        io.restart();
        timers.clear();
        return fired;
    };
    round();
    for (auto _ : state)
        if (round() != n / 2) state.SkipWithError("wrong number of timers fired");
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CallLaterCancel_Asio)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// Two stackful coroutines ping-pong by posting themselves: one item = one yield.
static void BM_FiberYield_Asio(benchmark::State& state) {
    asio::io_context io(1);
    const int n = 100'000;
    for (auto _ : state) {
        for (int c = 0; c < 2; ++c)
            asio::spawn(io, [&io, n](asio::yield_context yield) {
                for (int i = 0; i < n; ++i) asio::post(io, yield);
            });
        io.run();
        io.restart();
    }
    state.SetItemsProcessed(state.iterations() * 2 * n);
}
BENCHMARK(BM_FiberYield_Asio)->Unit(benchmark::kMillisecond);

// Spawn 1000 trivial coroutines and run them to completion (asio 1.74's spawn has no
// join; running the io_context empty is the join).
static void BM_SpawnJoin_Asio(benchmark::State& state) {
    asio::io_context io(1);
    const int batch = 1000;
    for (auto _ : state) {
        int done = 0;
        for (int i = 0; i < batch; ++i) asio::spawn(io, [&done](asio::yield_context) { ++done; });
        io.run();
        io.restart();
        benchmark::DoNotOptimize(done);
    }
    state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_SpawnJoin_Asio);

static long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

// Resident memory per suspended coroutine: 100k coroutines each waiting on a timer.
static void BM_IdleFiberRSS_Asio(benchmark::State& state) {
    const int n = 100'000;
    double per = 0;
    for (auto _ : state) {
        asio::io_context io(1);
        std::vector<std::unique_ptr<asio::steady_timer>> timers;
        timers.reserve(n);
        long before = rss_bytes();
        for (int i = 0; i < n; ++i) {
            timers.push_back(std::make_unique<asio::steady_timer>(io, asio::steady_timer::time_point::max()));
            asio::spawn(io, [t = timers.back().get()](asio::yield_context yield) {
                boost::system::error_code ec;
                t->async_wait(yield[ec]);
            });
        }
        io.poll();  // every coroutine has started and is waiting
        per = double(rss_bytes() - before) / n;
        for (auto& t : timers) t->cancel();
        io.run();
    }
    state.counters["rss_bytes_per_fiber"] = per;
}
BENCHMARK(BM_IdleFiberRSS_Asio)->Unit(benchmark::kMillisecond)->Iterations(1);

BENCHMARK_MAIN();
