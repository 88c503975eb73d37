// Loop basics: ordering, handles, stop, misuse errors, the exception handler, close().
#include <weft/error.hpp>
#include <weft/loop.hpp>

#include "core/detail/loop_seam.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
// Collects what reaches the exception handler.
struct Reports {
    std::vector<weft::ExceptionContext> seen;
    void install(weft::Loop& loop) {
        loop.set_exception_handler(
            [this](weft::Loop&, const weft::ExceptionContext& c) { seen.push_back(c); });
    }
};
std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    }
}
}  // namespace

TEST(Loop, CallSoonIsFifo) {
    weft::Loop loop;
    std::vector<int> order;
    for (int i = 0; i < 100; ++i) loop.call_soon([&order, i] { order.push_back(i); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    ASSERT_EQ(order.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(Loop, TimersFireByDeadlineThenFifo) {
    weft::Loop loop;
    std::vector<std::string> order;
    auto start = loop.time();
    auto base = start + 20ms;
    loop.call_at(base + 10ms, [&] { order.push_back("late"); });
    loop.call_at(base, [&] { order.push_back("first"); });
    loop.call_at(base, [&] { order.push_back("second"); });
    loop.call_at(start + 1ms, [&] { order.push_back("soonest"); });
    loop.call_at(base + 10ms, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_GE(loop.time() - start, 30ms);
    EXPECT_EQ(order, (std::vector<std::string>{"soonest", "first", "second", "late"}));
}

TEST(Loop, CancelledHandlesNeverRun) {
    weft::Loop loop;
    int ran = 0;
    weft::Handle h = loop.call_soon([&] { ++ran; });
    weft::TimerHandle t = loop.call_later(1ms, [&] { ++ran; });
    EXPECT_FALSE(h.cancelled());
    h.cancel();
    t.cancel();
    t.cancel();  // twice is harmless
    EXPECT_TRUE(h.cancelled());
    EXPECT_TRUE(t.cancelled());
    loop.call_later(5ms, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(ran, 0);
}

TEST(Loop, HandleCanCancelALaterCallbackFromAnEarlierOne) {
    weft::Loop loop;
    std::vector<int> ran;
    weft::Handle second;
    loop.call_soon([&] {
        ran.push_back(1);
        second.cancel();
    });
    second = loop.call_soon([&] { ran.push_back(2); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(ran, std::vector<int>{1});
}

TEST(Loop, TimerHandleKnowsItsDeadline) {
    weft::Loop loop;
    auto when = loop.time() + 1h;
    weft::TimerHandle t = loop.call_at(when, [] {});
    EXPECT_EQ(t.when(), when);
    t.cancel();
}

TEST(Loop, CallbacksScheduleCallbacks) {
    weft::Loop loop;
    int depth = 0;
    std::function<void()> step = [&] {
        if (++depth == 1000)
            loop.stop();
        else
            loop.call_soon(step);
    };
    loop.call_soon(step);
    loop.run_forever();
    EXPECT_EQ(depth, 1000);
}

TEST(Loop, StopFromInsideACallbackFinishesTheTurn) {
    weft::Loop loop;
    std::vector<int> ran;
    loop.call_soon([&] {
        ran.push_back(1);
        loop.stop();
    });
    loop.call_soon([&] { ran.push_back(2); });  // same turn: still runs
    loop.run_forever();
    EXPECT_EQ(ran, (std::vector<int>{1, 2}));
    EXPECT_FALSE(loop.is_running());
    loop.call_soon([&] { ran.push_back(3); });
    loop.stop();  // before run_forever: one turn, then return
    loop.run_forever();
    EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(Loop, RunningAndCurrent) {
    weft::Loop loop;
    EXPECT_EQ(weft::Loop::running(), nullptr);
    EXPECT_THROW(weft::Loop::current(), weft::InvalidStateError);
    bool checked = false;
    loop.call_soon([&] {
        EXPECT_EQ(weft::Loop::running(), &loop);
        EXPECT_EQ(&weft::Loop::current(), &loop);
        EXPECT_TRUE(loop.is_running());
        checked = true;
        loop.stop();
    });
    loop.run_forever();
    EXPECT_TRUE(checked);
    EXPECT_EQ(weft::Loop::running(), nullptr);
}

TEST(Loop, SecondRunningLoopOnOneThreadIsAnError) {
    weft::Loop outer, inner;
    std::string error;
    outer.call_soon([&] {
        try {
            inner.run_forever();
        } catch (const weft::InvalidStateError& e) {
            error = e.what();
        }
        outer.stop();
    });
    outer.run_forever();
    EXPECT_NE(error.find("another event loop is already running"), std::string::npos) << error;
}

TEST(Loop, RunningTheSameLoopTwiceIsAnError) {
    weft::Loop loop;
    std::string error;
    loop.call_soon([&] {
        try {
            loop.run_once();
        } catch (const weft::InvalidStateError& e) {
            error = e.what();
        }
        loop.stop();
    });
    loop.run_forever();
    EXPECT_NE(error.find("already running"), std::string::npos) << error;
}

TEST(Loop, ClosedLoopRefusesWork) {
    weft::Loop loop;
    loop.close();
    EXPECT_TRUE(loop.is_closed());
    loop.close();  // idempotent
    EXPECT_THROW(loop.run_forever(), weft::InvalidStateError);
    EXPECT_THROW(loop.run_once(), weft::InvalidStateError);
    EXPECT_THROW(loop.call_soon([] {}), weft::InvalidStateError);
    EXPECT_THROW(loop.call_later(1ms, [] {}), weft::InvalidStateError);
    EXPECT_THROW(loop.call_soon_threadsafe([] {}), weft::InvalidStateError);
    EXPECT_THROW(loop.add_signal_handler(SIGUSR1, [] {}), weft::InvalidStateError);
    try {
        loop.call_soon([] {});
    } catch (const weft::InvalidStateError& e) {
        EXPECT_EQ(e.code(), weft::errc::invalid_state);
        EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos);
    }
}

TEST(Loop, CloseWhileRunningIsAnError) {
    weft::Loop loop;
    bool threw = false;
    loop.call_soon([&] {
        try {
            loop.close();
        } catch (const weft::InvalidStateError&) {
            threw = true;
        }
        loop.stop();
    });
    loop.run_forever();
    EXPECT_TRUE(threw);
}

// asyncio: call_later with a negative delay runs in the next turn, in order with the
// other due timers (the earliest deadline first), instead of failing.
TEST(Loop, NegativeDelayRunsInTheNextTurn) {
    weft::Loop loop;
    std::vector<int> order;
    loop.call_later(1ms, [&] { order.push_back(2); });
    loop.call_later(-5ms, [&] { order.push_back(1); });
    loop.call_later(2ms, [&] {
        order.push_back(3);
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(Loop, ExceptionInCallbackGoesToHandlerAndLoopKeepsRunning) {
    weft::Loop loop;
    Reports reports;
    reports.install(loop);
    bool after = false;
    loop.call_soon([] { throw std::runtime_error("boom"); });
    loop.call_later(1ms, [] { throw std::runtime_error("timer boom"); });
    loop.call_later(2ms, [&] {
        after = true;
        loop.stop();
    });
    loop.run_forever();
    EXPECT_TRUE(after);
    ASSERT_EQ(reports.seen.size(), 2u);
    EXPECT_EQ(reports.seen[0].message, "Exception in callback");
    EXPECT_EQ(what_of(reports.seen[0].exception), "boom");
    EXPECT_NE(reports.seen[0].source.find("loop_test.cpp:"), std::string::npos);
    EXPECT_EQ(what_of(reports.seen[1].exception), "timer boom");
}

TEST(Loop, DefaultExceptionHandlerPrintsTheSource) {
    weft::Loop loop;
    loop.call_soon([] { throw std::runtime_error("printed"); });
    loop.call_soon([&] { loop.stop(); });
    testing::internal::CaptureStderr();
    loop.run_forever();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Exception in callback"), std::string::npos) << err;
    EXPECT_NE(err.find("loop_test.cpp:"), std::string::npos) << err;
    EXPECT_NE(err.find("printed"), std::string::npos) << err;
}

TEST(Loop, ThrowingExceptionHandlerFallsBackToDefault) {
    weft::Loop loop;
    loop.set_exception_handler([](weft::Loop&, const weft::ExceptionContext&) {
        throw std::runtime_error("handler broke");
    });
    loop.call_soon([] { throw std::runtime_error("original"); });
    loop.call_soon([&] { loop.stop(); });
    testing::internal::CaptureStderr();
    loop.run_forever();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("handler broke"), std::string::npos) << err;
    EXPECT_NE(err.find("original"), std::string::npos) << err;
}

TEST(Loop, CloseReportsWorkThatNeverRan) {
    weft::Loop loop;
    Reports reports;
    reports.install(loop);
    loop.call_soon([] {});
    loop.call_later(1h, [] {});
    loop.call_soon([] {}).cancel();  // cancelled work is not "lost"
    loop.call_soon_threadsafe([] {});
    loop.close();
    ASSERT_EQ(reports.seen.size(), 1u);
    EXPECT_NE(reports.seen[0].message.find("3 scheduled callback(s) that never ran"),
              std::string::npos)
        << reports.seen[0].message;
    EXPECT_NE(reports.seen[0].source.find("loop_test.cpp:"), std::string::npos);
}

TEST(Loop, HandlesOutliveTheirLoop) {
    weft::TimerHandle t;
    {
        weft::Loop loop;
        loop.set_exception_handler([](weft::Loop&, const weft::ExceptionContext&) {});
        t = loop.call_later(1h, [] {});
    }
    t.cancel();  // the loop is gone: nothing to touch, no crash
    EXPECT_TRUE(t.cancelled());
}

TEST(Loop, CloseWithNothingPendingReportsNothing) {
    weft::Loop loop;
    Reports reports;
    reports.install(loop);
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    loop.close();
    EXPECT_TRUE(reports.seen.empty());
}

TEST(Loop, LoopsOnDifferentThreadsAreIndependent) {
    std::vector<std::thread> threads;
    std::atomic<int> done{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            weft::Loop loop;
            int n = 0;
            std::function<void()> step = [&] {
                if (++n < 1000)
                    loop.call_soon(step);
                else
                    loop.stop();
            };
            loop.call_soon(step);
            loop.run_forever();
            if (n == 1000) ++done;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(done.load(), 4);
}

TEST(Loop, ReportsItsReactor) {
    std::string name = weft::Loop::reactor_name();
    EXPECT_TRUE(name == "epoll" || name == "kqueue" || name == "poll") << name;
}

// Issue 20, item 5: a loop that reports a flood (a server with one report per reset
// connection) prints at most ten a second and says how many it left out.
TEST(Loop, DefaultReportsAreRateLimitedAndSummarised) {
    testing::internal::CaptureStderr();
    {
        weft::Loop loop;
        for (int i = 0; i < 50; ++i)
            loop.call_exception_handler({"connection reset " + std::to_string(i), nullptr, "peer"});
        loop.close();
    }
    std::string err = testing::internal::GetCapturedStderr();
    size_t printed = 0;
    for (size_t at = err.find("connection reset"); at != std::string::npos;
         at = err.find("connection reset", at + 1))
        ++printed;
    EXPECT_EQ(printed, 10u) << err;
    EXPECT_NE(err.find("40 more report(s) suppressed"), std::string::npos) << err;
}

// A blocked stderr (a pipe nobody reads) must not stall the loop: reports are written only
// as far as stderr takes them at once. Checked in a child whose stderr is such a pipe,
// filled up first; before the fix its first report blocked for ever.
TEST(Loop, BlockedStderrDoesNotStallTheLoop) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int p[2];
        if (::pipe(p) != 0) ::_exit(2);
        ::dup2(p[1], STDERR_FILENO);
        int flags = ::fcntl(p[1], F_GETFL);
        ::fcntl(p[1], F_SETFL, flags | O_NONBLOCK);
        char junk[4096] = {};
        while (::write(p[1], junk, sizeof junk) > 0) {  // fill the pipe
        }
        ::fcntl(p[1], F_SETFL, flags);  // stderr itself stays a blocking fd
        weft::Loop loop;
        int left = 20000;
        std::function<void()> step = [&] {
            loop.call_exception_handler({"connection reset", nullptr, "peer 127.0.0.1:1"});
            if (--left > 0)
                loop.call_soon(step);
            else
                loop.stop();
        };
        loop.call_soon(step);
        loop.run_forever();
        loop.close();
        ::_exit(0);
    }
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    pid_t done = 0;
    while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    if (done == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL() << "the loop stalled on a blocked stderr";
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

namespace {
struct SlotA final : weft::detail::LoopExtension {
    void on_close(weft::Loop&) override { ++closes; }
    int closes = 0;
};
struct SlotB final : weft::detail::LoopExtension {
    void on_close(weft::Loop&) override {}
};
}  // namespace

// The fiber layer's extension slot is typed: only the type put there gets it back, a
// second one is refused, and close() tells the one there.
TEST(LoopSeam, ExtensionSlotIsTyped) {
    using weft::detail::LoopSeam;
    weft::Loop loop;
    EXPECT_EQ(LoopSeam::extension<SlotA>(loop), nullptr);
    auto a = std::make_unique<SlotA>();
    SlotA* raw = a.get();
    LoopSeam::set_extension(loop, std::move(a));
    EXPECT_EQ(LoopSeam::extension<SlotA>(loop), raw);
    EXPECT_EQ(LoopSeam::extension<SlotB>(loop), nullptr);
    EXPECT_THROW(LoopSeam::set_extension(loop, std::make_unique<SlotB>()), weft::InvalidStateError);
    EXPECT_EQ(LoopSeam::extension<SlotA>(loop), raw);
    loop.close();
    EXPECT_EQ(raw->closes, 1);
}
