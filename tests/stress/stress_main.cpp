// `make stress`: the scale runs, bounded in time and count, loopback only. Each prints
// what it measured (time, RSS) and fails on any lost item or error.
//   1M concurrent sleeping fibers; 10k concurrent TCP connections echoing for a while with
//   zero errors and flat RSS (the forked server's RSS printed beside the client's); 10M
//   call_soon_threadsafe from 2 threads with none lost.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {
long rss_kib() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * ::sysconf(_SC_PAGESIZE) / 1024;
}
// Another process's resident set (VmRSS in /proc/<pid>/status), in KiB; -1 if unreadable.
long rss_kib_of(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

// Owns a forked child: kills and reaps it on every way out of the test (a failed ASSERT
// returns early, an exception unwinds), so no server is left running behind the suite.
class ChildGuard {
public:
    explicit ChildGuard(pid_t pid) : pid_(pid) {}
    ChildGuard(const ChildGuard&) = delete;
    ChildGuard& operator=(const ChildGuard&) = delete;
    ~ChildGuard() { stop(); }
    pid_t pid() const noexcept { return pid_; }
    void stop() noexcept {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

private:
    pid_t pid_;
};

double seconds_since(weft::TimePoint t) {
    return std::chrono::duration<double>(weft::Clock::now() - t).count();
}
}  // namespace

TEST(Stress, OneMillionSleepingFibers) {
    const int n = 1'000'000;
    weft::RunOptions options;
    options.guard_pages = false;  // 1M guarded stacks would need 2M kernel mappings
    options.stack_size = 32 * 1024;
    auto start = weft::Clock::now();
    long rss_before = rss_kib(), rss_peak = 0;
    int woke = 0;
    weft::run(
        [&] {
            // Each sleeps on its own timer (1M in the loop's heap) for far longer than the
            // test; once all are asleep, cancelling wakes each one at its sleep.
            std::vector<weft::Task<void>> tasks;
            tasks.reserve(n);
            for (int i = 0; i < n; ++i) tasks.push_back(weft::spawn([&] {
                try {
                    weft::sleep(3600s);
                } catch (const weft::Cancelled&) {
                    ++woke;
                }
            }));
            weft::sleep(0ms);
            weft::sleep(0ms);
            rss_peak = rss_kib();
            for (auto& t : tasks) t.cancel();
            weft::gather(tasks);
        },
        options);
    EXPECT_EQ(woke, n);
    std::printf("1M fibers: %.2f s, RSS +%ld MiB (%.0f bytes per fiber)\n", seconds_since(start),
                (rss_peak - rss_before) / 1024, double(rss_peak - rss_before) * 1024 / n);
}

TEST(Stress, TenThousandEchoingConnections) {
    const int n = 10'000;
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;  // the server runs in a child, so n + a margin per process
    ::setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rlim_t(n + 200)) GTEST_SKIP() << "RLIMIT_NOFILE too low: " << rl.rlim_cur;
    const auto duration = std::chrono::seconds(std::getenv("WEFT_STRESS_SECONDS")
                                                   ? std::atoi(std::getenv("WEFT_STRESS_SECONDS"))
                                                   : 30);
    weft::RunOptions options;
    options.guard_pages = false;  // 10k fibers on each side
    options.stack_size = 64 * 1024;

    int port_pipe[2];
    ASSERT_EQ(::pipe(port_pipe), 0);
    pid_t server_pid = ::fork();
    ASSERT_GE(server_pid, 0);
    if (server_pid == 0) {  // the echo server, in its own process
        ::close(port_pipe[0]);
        try {
            weft::run(
                [&] {
                    auto server = weft::start_server(
                        [](weft::Stream& s) {
                            for (std::string line; !(line = s.read_line()).empty();) s.write(line);
                        },
                        "127.0.0.1", 0, {.backlog = 4096, .stream = {}});
                    uint16_t port = server->port();
                    [[maybe_unused]] ssize_t w = ::write(port_pipe[1], &port, sizeof port);
                    server->serve_forever();
                },
                options);
        } catch (const std::exception& e) {  // never back into gtest from the child
            std::fprintf(stderr, "stress echo server: %s\n", e.what());
            ::_exit(1);
        } catch (...) {  // Cancelled or KeyboardInterrupt (not std::exceptions)
            ::_exit(1);
        }
        ::_exit(0);
    }
    ChildGuard server(server_pid);
    ::close(port_pipe[1]);
    uint16_t port = 0;
    ssize_t got = ::read(port_pipe[0], &port, sizeof port);
    ::close(port_pipe[0]);
    ASSERT_EQ(got, ssize_t(sizeof port)) << "the server child died before listening";

    long errors = 0, rounds = 0, rss_after_connect = 0, rss_end = 0;
    long server_rss_start = rss_kib_of(server.pid()), server_rss_after_connect = 0;
    long server_rss_end = 0;
    weft::run(
        [&] {
            std::vector<weft::Stream> clients;
            clients.reserve(n);
            for (int i = 0; i < n; ++i) clients.push_back(weft::open_connection("127.0.0.1", port));
            auto until = weft::Clock::now() + duration;
            auto warm = weft::spawn([&] {  // RSS once every client fiber is up and echoing
                weft::sleep(std::min<weft::Duration>(1s, duration / 4));
                rss_after_connect = rss_kib();
                server_rss_after_connect = rss_kib_of(server.pid());
            });
            std::vector<weft::Task<void>> tasks;
            for (int i = 0; i < n; ++i)
                tasks.push_back(weft::spawn([&, i] {
                    weft::Stream& c = clients[size_t(i)];
                    std::string msg = "ping " + std::to_string(i) + "\n";
                    while (weft::Clock::now() < until) {
                        c.write(msg);
                        if (c.read_line() != msg) ++errors;
                        ++rounds;
                        weft::sleep(100ms);
                    }
                }));
            weft::gather(tasks);
            rss_end = rss_kib();
            server_rss_end = rss_kib_of(server.pid());
            warm.get();
            for (auto& c : clients) c.close();
        },
        options);
    server.stop();
    EXPECT_EQ(errors, 0);
    EXPECT_LT(rss_end, rss_after_connect + rss_after_connect / 10 + 10 * 1024);  // flat: < +10%
    std::printf("10k connections for %lld s: %ld round trips, %ld errors, client RSS %ld -> %ld "
                "MiB, server RSS %ld (idle) -> %ld -> %ld MiB\n",
                (long long)duration.count(), rounds, errors, rss_after_connect / 1024,
                rss_end / 1024, server_rss_start / 1024, server_rss_after_connect / 1024,
                server_rss_end / 1024);
}

TEST(Stress, TenMillionThreadsafeCallbacks) {
    const int per_thread = 5'000'000;
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    long ran = 0;
    auto start = weft::Clock::now();
    std::vector<std::thread> producers;
    for (int t = 0; t < 2; ++t)
        producers.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i)
                handle.call_soon_threadsafe([&] {
                    if (++ran == 2L * per_thread) loop.stop();
                });
        });
    auto guard = loop.call_later(120s, [&] { loop.stop(); });  // bound: fail instead of hanging
    loop.run_forever();
    guard.cancel();
    for (auto& p : producers) p.join();
    EXPECT_EQ(ran, 2L * per_thread);
    std::printf("10M call_soon_threadsafe from 2 threads: %.2f s, none lost\n", seconds_since(start));
}
