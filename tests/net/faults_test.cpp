// Faults: a peer that resets mid-write, and cancellation landed at every suspension point
// of a scenario that connects, writes, reads, sleeps, locks, takes from a queue and awaits
// an executor job. After each cancel nothing may leak and the loop must stay healthy.
#include <weft/weft.hpp>

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
int open_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

// Loop thread: the suspension count of the live task called `name` (-1 when gone).
int64_t suspensions_of(const std::string& name) {
    for (const weft::TaskInfo& t : weft::task_snapshot(weft::Loop::current(), false))
        if (t.name == name) return t.suspensions;
    return -1;
}

constexpr size_t kPayload = 1 << 20;  // big enough that drain() has to wait
}  // namespace

TEST(Faults, PeerResetMidWriteIsAnErrorWithErrnoAndPeer) {
    weft::run([] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                s.read_exactly(1);
                linger hard{1, 0};  // close with RST instead of FIN
                ::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
                s.close();
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        std::string chunk(64 * 1024, 'x');
        bool failed = false;
        for (int i = 0; i < 2000 && !failed; ++i) {  // at most 128 MiB: the RST comes first
            try {
                c.write(chunk);
                c.drain();
            } catch (const weft::Error& e) {
                failed = true;
                int err = e.code().value();
                EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << e.what();
                EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(server->port())),
                          std::string::npos)
                    << e.what();
            }
        }
        EXPECT_TRUE(failed);
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Faults, CancelAtEverySuspensionPoint) {
    weft::run([] {
        // The server reads the whole payload, answers "hello", then waits for EOF; any
        // failure on its side is a client that was cancelled, and is expected.
        auto server = weft::start_server(
            [](weft::Stream& s) {
                try {
                    weft::sleep(2ms);  // a slow reader: the client's drain() has to wait
                    s.read_exactly(kPayload);
                    s.write("hello");
                    s.drain();
                    s.read(1);
                } catch (const weft::Error&) {
                }
            },
            "127.0.0.1", 0);
        const uint16_t port = server->port();
        weft::ThreadPool pool(1);
        weft::sleep(0ms);
        const int fds_before = open_fds();
        const size_t tasks_before = weft::all_tasks().size();

        int total_points = -1;
        std::set<std::string> cancelled_in;  // the steps a cancel landed in
        for (int k = 1; k <= 200 && total_points < 0; ++k) {
            weft::Lock lock;
            weft::Queue<int> queue;
            std::string name = "scenario-" + std::to_string(k);
            const char* step = "start";
            bool finished = false;
            auto scenario = weft::create_task(weft::Loop::current(), [&] {
                step = "connect";
                auto c = weft::open_connection("127.0.0.1", port);
                step = "drain";
                int small = 16 * 1024;  // so that the kernel cannot absorb the payload
                ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
                c.write(std::string(kPayload, 'p'));
                c.drain();
                step = "read";
                EXPECT_EQ(c.read_exactly(5), "hello");
                step = "sleep";
                weft::sleep(1ms);
                // Each of these waits for a helper, so it always suspends.
                step = "lock";
                weft::spawn([&] {
                    std::lock_guard g(lock);
                    weft::sleep(1ms);
                });
                weft::sleep(0ms);  // the helper takes the lock first
                {
                    std::lock_guard g(lock);
                }
                step = "queue";
                weft::spawn([&] {
                    weft::sleep(1ms);
                    queue.put(42);
                });
                EXPECT_EQ(queue.get(), 42);
                step = "executor";
                EXPECT_EQ(weft::run_in_executor(&pool, [] {
                              std::this_thread::sleep_for(1ms);
                              return 5;
                          }).get(),
                          5);
                step = "close";
                c.close();
                c.wait_closed();
                finished = true;
            }, name);

            // Cancel exactly while it waits at its k-th suspension point. It advances by at
            // most one point per turn and this loop looks once per turn.
            const auto give_up = std::chrono::steady_clock::now() + 10s;
            while (!scenario.done() && std::chrono::steady_clock::now() < give_up) {
                int64_t n = suspensions_of(name);

                if (n >= k) {
                    ASSERT_EQ(n, k) << "missed suspension point " << k;
                    scenario.cancel();
                    break;
                }
                weft::sleep(0ms);
            }
            try {
                scenario.get();
            } catch (const weft::Cancelled&) {
            }
            if (finished) {
                total_points = k - 1;  // it ran to the end without reaching point k
            } else {
                EXPECT_TRUE(scenario.cancelled()) << "point " << k << " in " << step;
                cancelled_in.insert(step);
            }

            // Nothing leaks: fds and tasks return to where they were (the helpers and the
            // server's side of the connection end a few turns after the scenario). Bounded
            // by time, 10 s, not by a count of short sleeps.
            weft::testing::wait_until([&] {
                return open_fds() == fds_before && weft::all_tasks().size() == tasks_before;
            });
            EXPECT_EQ(open_fds(), fds_before) << "after a cancel in " << step;
            EXPECT_EQ(weft::all_tasks().size(), tasks_before) << "after a cancel in " << step;
            EXPECT_FALSE(lock.locked()) << "after a cancel in " << step;
            // The loop is healthy: callbacks and timers still run.
            bool called = false;
            weft::Loop::current().call_soon([&] { called = true; });
            weft::sleep(1ms);
            EXPECT_TRUE(called);
            if (testing::Test::HasFatalFailure()) return;
        }
        ASSERT_GT(total_points, 0) << "the scenario never ran to its end";
        for (const char* s : {"drain", "sleep", "lock", "queue", "executor"})
            EXPECT_TRUE(cancelled_in.count(s)) << "no cancel landed in " << s;
        server->close();
        server->wait_closed();
    });
}

// Destruction-order mistakes: tasks, streams and a server that outlive their loop. The
// loop reports and unwinds the pending task when it goes; what is left are handles whose
// use is a clear error and whose destructors are harmless.
TEST(Faults, TaskStreamsAndServerOutliveTheirLoop) {
    std::optional<weft::Task<int>> sleeper;
    std::optional<std::pair<weft::Stream, weft::Stream>> pair;
    std::unique_ptr<weft::Server> server;
    std::vector<std::string> reports;
    {
        weft::Loop loop;
        loop.set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { reports.push_back(c.message); });
        auto setup = weft::create_task(loop, [&] {
            pair.emplace(weft::stream_pair());
            server = weft::start_server([](weft::Stream&) {}, "127.0.0.1", 0);
            sleeper = weft::spawn([] {
                weft::sleep(1h);
                return 1;
            });
        });
        for (int i = 0; i < 5 && !setup.done(); ++i) loop.run_once(false);
        ASSERT_TRUE(setup.done());
    }  // the loop goes first
    ASSERT_TRUE(sleeper->done());
    EXPECT_TRUE(sleeper->cancelled());
    bool reported = false;
    for (const std::string& r : reports) reported |= r.find("pending") != std::string::npos;
    EXPECT_TRUE(reported) << "the pending task was not reported";
    EXPECT_THROW(pair->first.write("x"), weft::Error);
    EXPECT_THROW(sleeper->get(), weft::Cancelled);  // done (cancelled): get() never suspends
    pair.reset();  // destructors after the loop: no crash, no fd left open
    server.reset();
}

// Issue 20, item 5: a connection reset before the server adopted it is still reported with
// the address accept() returned (getpeername then fails with ENOTCONN).
TEST(Faults, ConnectionResetBeforeItsHandlerKeepsItsPeerAddress) {
    weft::run([] {
        std::string seen;
        bool handled = false;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                seen = s.peer_address().to_string();
                handled = true;
            },
            "127.0.0.1", 0);
        // A plain blocking client, so that the loop (and its accept) runs only after the RST.
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(server->port());
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
        sockaddr_in me{};
        socklen_t len = sizeof me;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
        std::string client = weft::SocketAddress(reinterpret_cast<sockaddr*>(&me), len).to_string();
        linger hard{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        ::close(fd);  // RST
        for (int i = 0; i < 500 && !handled; ++i) weft::sleep(10ms);
        EXPECT_EQ(seen, client);
        server->close();
        server->wait_closed();
    });
}
