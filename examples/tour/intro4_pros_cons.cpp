// Seed "Python 异步编程", section 四: the pros and cons of asynchronous code, each shown
// rather than told — many waits and connections at once, CPU work that does not overlap on
// one loop (and the executor that fixes it), a blocking call stalling the loop, and a look
// at every task's state. Section 五 (best practices) is intro5_best_practices.
#include <weft/weft.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tour.hpp"

using namespace std::chrono_literals;
using tour::seconds;
using Clock = std::chrono::steady_clock;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void pros() {
    tour::section("pros: I/O-bound work overlaps; thousands of connections");
    auto t0 = Clock::now();
    std::vector<weft::Task<int>> waits;
    for (int i = 0; i < 10'000; ++i) waits.push_back(weft::spawn([i] { return weft::sleep(seconds(1), i); }));
    long sum = 0;
    for (int v : weft::gather(waits)) sum += v;
    Clock::duration took = Clock::now() - t0;
    // One after another they would take 10000 seed seconds; together, about one. The bound
    // is loose on purpose: a sanitizer build on a busy machine needs a second or two just
    // to start 10000 fibers, and the point is the overlap, not the machine's speed.
    std::printf("10000 tasks each waiting 1 seed second: sum of results %ld, "
                "done in under 1%% of the 10000 seed seconds one after another takes: %s\n",
                sum, took < seconds(100) ? "yes" : "no");
    tour::varying("took %.3f s", secs(took));

    constexpr int kConnections = 400;
    weft::ServerOptions options;
    options.backlog = kConnections;  // 128 would make the kernel drop SYNs: 1 s retries
    auto echo = weft::start_server([](weft::Stream& s) {
        for (std::string line; !(line = s.read_line()).empty();) s.write(line);
        s.wait_closed();
    }, "127.0.0.1", 0, options);
    t0 = Clock::now();
    std::vector<weft::Task<bool>> clients;
    for (int i = 0; i < kConnections; ++i)
        clients.push_back(weft::spawn([port = echo->port(), i] {
            weft::Stream s = weft::open_connection("127.0.0.1", port);
            std::string msg = "hello " + std::to_string(i) + "\n";
            s.write(msg);
            bool ok = s.read_line() == msg;
            s.wait_closed();
            return ok;
        }));
    int ok = 0;
    for (bool b : weft::gather(clients)) ok += b;
    std::printf("%d concurrent connections echoed through one loop: %d answered correctly\n", kConnections, ok);
    tour::varying("took %.3f s", secs(Clock::now() - t0));
    echo->close();
    echo->wait_closed();
}

uint64_t cpu_work(uint64_t n) {  // not foldable into a formula
    uint64_t x = n, acc = 0;
    for (uint64_t i = 0; i < n; ++i) acc += (x = x * 6364136223846793005ULL + 1) >> 60;
    return acc;
}

void cons() {
    tour::section("cons: CPU-bound work does not overlap on one loop");
    constexpr uint64_t kWork = 20'000'000;
    auto t0 = Clock::now();
    auto [a, b] = weft::gather([] { return cpu_work(kWork); }, [] { return cpu_work(kWork + 1); });
    double on_loop = secs(Clock::now() - t0);
    t0 = Clock::now();
    auto fa = weft::run_in_executor(nullptr, cpu_work, kWork);  // the loop's default pool
    auto fb = weft::run_in_executor(nullptr, cpu_work, kWork + 1);
    auto [c, d] = weft::gather(fa, fb);
    double on_pool = secs(Clock::now() - t0);
    std::printf("same results on the loop and on the worker pool: %s\n", a == c && b == d ? "yes" : "no");
    tour::varying("two CPU jobs as tasks on the loop: %.3f s (one after the other)", on_loop);
    tour::varying("the same two through run_in_executor: %.3f s (in parallel, cores permitting)", on_pool);

    tour::section("cons: a blocking call stalls every task");
    int ticks = 0;
    auto ticker = weft::spawn([&] {
        for (;;) {
            weft::sleep(seconds(1) / 10);
            ++ticks;
        }
    });
    weft::sleep(0ms);
    int before = ticks;
    std::this_thread::sleep_for(seconds(3));  // time.sleep(3): the loop cannot run the ticker
    std::printf("ticker ran during a blocking sleep: %s\n", ticks > before ? "yes" : "no");
    before = ticks;
    weft::sleep(seconds(3));  // await asyncio.sleep(3)
    std::printf("ticker ran during weft::sleep: %s\n", ticks > before ? "yes" : "no");
    ticker.cancel();
    std::puts("(debug mode names the task that held the loop: see intro1_asyncio_api)");

    tour::section("cons: hard to debug -> every task, its state and where it waits");
    auto waiter = weft::spawn({.name = "waiting-for-event"}, [] {
        weft::Event never;
        never.wait();
    });
    weft::sleep(0ms);
    for (const auto& t : weft::task_snapshot(weft::Loop::current()))
        std::printf("task %s: %s\n", t.name.c_str(), t.state.c_str());
    std::string dump = weft::dump_tasks();  // with call stacks: they vary from build to build
    for (size_t at = 0, end; at < dump.size(); at = end + 1) {
        end = dump.find('\n', at);
        if (end == std::string::npos) end = dump.size();
        tour::varying("%s", dump.substr(at, end - at).c_str());
    }
    waiter.cancel();
    weft::sleep(0ms);
}

int main() {
    weft::run([] {
        pros();
        cons();
    });
}
