// The reactor contract (core/detail/reactor.hpp), driven directly on this build's backend:
// add / modify / rearm / remove, the edge rule, tokens after fd reuse, wake-ups, errors,
// capacity and EINTR. Pipes and socketpairs only; no Loop.
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/detail/platform.hpp"
#include "core/detail/reactor.hpp"
#include <gtest/gtest.h>
#include <weft/error.hpp>

using namespace std::chrono_literals;
using weft::kReadable;
using weft::kWritable;
using weft::detail::Reactor;
using weft::detail::ReactorEvent;

namespace {

struct Pipe {
    int fds[2];
    Pipe() { weft::detail::make_pipe(fds); }
    ~Pipe() { close(); }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    int r() const { return fds[0]; }
    int w() const { return fds[1]; }
    void put() const { ASSERT_EQ(::write(fds[1], "x", 1), 1); }
    void drain() const {  // read until EAGAIN, as an owner does before rearm()
        char buf[64];
        while (::read(fds[0], buf, sizeof buf) > 0) {
        }
    }
    void close() {
        for (int& fd : fds)
            if (fd >= 0) ::close(std::exchange(fd, -1));
    }
};

struct SocketPair {
    int fds[2];
    SocketPair() {
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        for (int fd : fds) weft::detail::set_nonblocking_cloexec(fd);
    }
    ~SocketPair() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

// One poll(); the events by token, each token at most once per call (the kqueue backend
// merges an fd's two filters when they come back side by side; here they must not repeat).
std::map<uint64_t, uint32_t> poll_once(Reactor& r, int timeout_ms = 0, int capacity = 64) {
    std::vector<ReactorEvent> out(size_t(capacity) + 4, ReactorEvent{0xdead, 0xdead});
    int n = r.poll(timeout_ms, out.data(), capacity);
    EXPECT_GE(n, 0);
    EXPECT_LE(n, capacity);
    for (size_t i = size_t(capacity); i < out.size(); ++i)
        EXPECT_EQ(out[i].token, 0xdeadu) << "poll wrote past capacity";
    std::map<uint64_t, uint32_t> got;
    for (int i = 0; i < n; ++i) got[out[size_t(i)].token] |= out[size_t(i)].events;
    return got;
}

// Events can take a moment to show on a loaded machine: look for up to a second.
std::map<uint64_t, uint32_t> poll_until_some(Reactor& r) {
    for (int i = 0; i < 20; ++i)
        if (auto got = poll_once(r, 50); !got.empty()) return got;
    return {};
}

int error_of(auto&& fn) {
    try {
        fn();
    } catch (const weft::SystemError& e) {
        return e.errno_value();
    }
    return 0;
}

double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST(Reactor, NameIsOneOfTheBackends) {
    std::set<std::string> names{"epoll", "kqueue", "poll"};
    EXPECT_TRUE(names.count(Reactor::name())) << Reactor::name();
}

TEST(Reactor, AddReportsReadinessWithItsToken) {
    Reactor r;
    Pipe p;
    r.add(p.r(), kReadable, 42);
    EXPECT_TRUE(poll_once(r).empty()) << "an empty pipe is not readable";
    p.put();
    auto got = poll_until_some(r);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(got.count(42));
    EXPECT_TRUE(got[42] & kReadable);
    r.remove(p.r());
}

TEST(Reactor, WritableInterestOnly) {
    Reactor r;
    SocketPair s;
    r.add(s.fds[0], kWritable, 7);
    auto got = poll_until_some(r);
    ASSERT_EQ(got.count(7), 1u);
    EXPECT_TRUE(got[7] & kWritable);
    EXPECT_FALSE(got[7] & kReadable) << "nothing to read";
    r.remove(s.fds[0]);
}

// Once reported, a direction is not reported again without new activity or rearm.
TEST(Reactor, EdgeRuleADirectionIsReportedOnceUntilRearmed) {
    Reactor r;
    Pipe p;
    r.add(p.r(), kReadable, 1);
    p.put();
    ASSERT_EQ(poll_until_some(r).count(1), 1u);
    EXPECT_TRUE(poll_once(r, 20).empty()) << "reported again with no rearm: level-triggered?";
    p.drain();
    r.rearm(p.r(), kReadable);
    EXPECT_TRUE(poll_once(r).empty()) << "drained, so nothing is ready";
    p.put();
    auto got = poll_until_some(r);
    ASSERT_EQ(got.count(1), 1u) << "rearmed readable not reported";
    EXPECT_TRUE(got[1] & kReadable);
    r.remove(p.r());
}

// rearm names directions: re-arming one does not bring back the other.
TEST(Reactor, RearmOnlyTheDirectionsItNames) {
    Reactor r;
    SocketPair s;
    r.add(s.fds[0], kReadable | kWritable, 5);
    auto first = poll_until_some(r);
    ASSERT_EQ(first.count(5), 1u);
    EXPECT_EQ(first[5] & (kReadable | kWritable), kWritable);
    EXPECT_TRUE(poll_once(r, 20).empty());
    r.rearm(s.fds[0], kReadable);
    EXPECT_TRUE(poll_once(r, 20).empty()) << "writable came back though rearm named readable";
    ASSERT_EQ(::write(s.fds[1], "y", 1), 1);
    auto got = poll_until_some(r);
    ASSERT_EQ(got.count(5), 1u);
    EXPECT_TRUE(got[5] & kReadable);
    r.remove(s.fds[0]);
}

TEST(Reactor, ModifyReplacesTokenAndInterestAndRearms) {
    Reactor r;
    SocketPair s;
    ASSERT_EQ(::write(s.fds[1], "z", 1), 1);
    r.add(s.fds[0], kReadable, 10);
    ASSERT_EQ(poll_until_some(r).count(10), 1u);
    EXPECT_TRUE(poll_once(r, 20).empty());
    // Same interest, new token: still-readable data is reported again, under the new token.
    r.modify(s.fds[0], kReadable, 11);
    auto got = poll_until_some(r);
    EXPECT_EQ(got.count(10), 0u) << "an event carried the token replaced by modify";
    ASSERT_EQ(got.count(11), 1u) << "modify did not re-arm";
    EXPECT_TRUE(got[11] & kReadable);
    // New interest: writable only.
    r.modify(s.fds[0], kWritable, 12);
    got = poll_until_some(r);
    ASSERT_EQ(got.count(12), 1u);
    EXPECT_TRUE(got[12] & kWritable);
    EXPECT_EQ(got.count(11), 0u);
    r.remove(s.fds[0]);
}

TEST(Reactor, RemoveStopsEventsAndFreesTheFd) {
    Reactor r;
    Pipe p;
    r.add(p.r(), kReadable, 3);
    r.remove(p.r());
    p.put();
    EXPECT_TRUE(poll_once(r, 20).empty()) << "an event for a removed fd";
    r.add(p.r(), kReadable, 4);  // not EEXIST: remove forgot it
    auto got = poll_until_some(r);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got.count(4), 1u);
    r.remove(p.r());
    r.remove(p.r());  // twice is fine
}

TEST(Reactor, RemoveOfAClosedFdIsFine) {
    Reactor r;
    Pipe p;
    r.add(p.r(), kReadable, 3);
    int fd = p.r();
    p.close();
    r.remove(fd);
    EXPECT_TRUE(poll_once(r).empty());
}

// An fd removed and closed whose number is reused: events carry the new owner's token only.
TEST(Reactor, EventsAfterFdReuseCarryTheNewToken) {
    Reactor r;
    auto old = std::make_unique<Pipe>();
    r.add(old->r(), kReadable, 100);
    old->put();  // readiness pending in the poller, never collected
    int number = old->r();
    r.remove(number);
    old.reset();
    Pipe reused;  // lowest free numbers: the old ones
    ASSERT_EQ(reused.r(), number) << "fd number not reused; the test needs it";
    r.add(reused.r(), kReadable, 200);
    EXPECT_TRUE(poll_once(r, 20).empty()) << "the old pipe's readiness leaked to its successor";
    reused.put();
    auto got = poll_until_some(r);
    EXPECT_EQ(got.count(100), 0u) << "stale token";
    ASSERT_EQ(got.count(200), 1u);
    EXPECT_TRUE(got[200] & kReadable);
    r.remove(reused.r());
}

TEST(Reactor, WakeFromAnotherThreadEndsABlockedPoll) {
    Reactor r;
    Pipe idle;
    r.add(idle.r(), kReadable, 9);
    std::thread waker([&] {
        std::this_thread::sleep_for(30ms);
        r.wake();
    });
    auto start = std::chrono::steady_clock::now();
    auto got = poll_once(r, 5000);
    waker.join();
    EXPECT_LT(ms_since(start), 2000) << "wake() did not end poll";
    EXPECT_TRUE(got.empty()) << "a wake-up was returned as an event";
    r.remove(idle.r());
}

TEST(Reactor, WakeBeforePollMakesItReturnPromptlyAndIsConsumed) {
    Reactor r;
    r.wake();
    r.wake();  // several wakes before one poll coalesce
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(poll_once(r, 5000).empty());
    EXPECT_LT(ms_since(start), 2000) << "a wake before poll was lost";
    // Consumed: the next poll waits its timeout out instead of returning at once.
    start = std::chrono::steady_clock::now();
    EXPECT_TRUE(poll_once(r, 40).empty());
    EXPECT_GE(ms_since(start), 30) << "the wake-up was not consumed";
}

TEST(Reactor, Errors) {
    Reactor r;
    EXPECT_EQ(error_of([&] { r.add(-1, kReadable, 1); }), EBADF);
    int closed;
    {
        Pipe p;
        closed = p.r();
    }
    EXPECT_EQ(error_of([&] { r.add(closed, kReadable, 1); }), EBADF);
    Pipe p;
    r.add(p.r(), kReadable, 1);
    EXPECT_EQ(error_of([&] { r.add(p.r(), kReadable, 2); }), EEXIST);
    EXPECT_EQ(error_of([&] { r.add(p.r(), kWritable, 2); }), EEXIST);
    // The failed adds left the first registration and its token alone.
    p.put();
    auto got = poll_until_some(r);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got.count(1), 1u);
    r.remove(p.r());
}

// More ready fds than capacity: every one comes back, over several polls, exactly once.
TEST(Reactor, MoreReadyThanCapacityIsReturnedOverSeveralPolls) {
    for (int capacity : {1, 7}) {
        Reactor r;
        std::vector<std::unique_ptr<Pipe>> pipes;
        for (int i = 0; i < 20; ++i) {
            pipes.push_back(std::make_unique<Pipe>());
            r.add(pipes.back()->r(), kReadable, uint64_t(1000 + i));
            pipes.back()->put();
        }
        r.wake();  // shares the budget on some backends; must not cost an fd its event
        std::map<uint64_t, int> seen;
        for (int round = 0; round < 100 && seen.size() < pipes.size(); ++round)
            for (auto& [token, events] : poll_once(r, 20, capacity)) {
                EXPECT_TRUE(events & kReadable);
                ++seen[token];
            }
        EXPECT_EQ(seen.size(), pipes.size()) << "capacity " << capacity << ": events lost";
        for (auto& [token, times] : seen) {
            EXPECT_GE(token, 1000u);
            EXPECT_LT(token, 1020u);
            EXPECT_EQ(times, 1) << "token " << token << " reported twice without rearm";
        }
        for (auto& p : pipes) r.remove(p->r());
    }
}

// A signal handler interrupting the wait makes poll return 0, not throw.
TEST(Reactor, InterruptedPollReturnsZero) {
    struct sigaction sa {}, old{};
    sa.sa_handler = [](int) {};
    sa.sa_flags = 0;  // no SA_RESTART: the wait sees EINTR
    ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
    Reactor r;
    pthread_t self = ::pthread_self();
    std::atomic<bool> done{false};
    std::thread interrupter([&] {
        while (!done.load()) {
            ::pthread_kill(self, SIGUSR2);
            std::this_thread::sleep_for(10ms);
        }
    });
    auto start = std::chrono::steady_clock::now();
    int n = -1;
    EXPECT_NO_THROW({
        ReactorEvent out[4];
        n = r.poll(3000, out, 4);
    });
    double took = ms_since(start);
    done = true;
    interrupter.join();
    ::sigaction(SIGUSR2, &old, nullptr);
    EXPECT_EQ(n, 0);
    EXPECT_LT(took, 2000) << "the signal did not interrupt poll";
}
