// The order fibers run in, and that busy fibers starve nothing. A fiber that suspends
// hands the thread straight to the next ready fiber, even across turns when the loop's
// next turn would have nothing else to do (Loop::take_next_ready) — also a new fiber for its
// first run, and from a fiber that just finished; these tests pin down that
// the result is exactly asyncio's order and that timers, I/O, other threads and stop()
// still get their turn.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fiber/detail/fiber.hpp"  // the fiber state changes

using namespace std::chrono_literals;

namespace {

// Busy fibers give up after this many yields, so a starved event fails the test instead
// of hanging it (a few seconds at worst, even under the sanitizers).
constexpr long kGiveUp = 20'000'000;

// Two fibers that yield to each other until *done; returns how many yields they made.
std::pair<weft::Task<long>, weft::Task<long>> spin_pair(const bool& done) {
    auto spin = [&done] {
        long n = 0;
        while (!done && n < kGiveUp) {
            weft::sleep(0ms);
            ++n;
        }
        return n;
    };
    return {weft::spawn(spin), weft::spawn(spin)};
}

}  // namespace

// The same program in asyncio prints: main A0 B0 main2 A1 B1 cb A2 B2 end
TEST(Scheduling, YieldOrderIsAsyncios) {
    std::vector<std::string> log;
    weft::run([&] {
        auto a = weft::spawn([&] {
            for (int i = 0; i < 3; ++i) {
                log.push_back("A" + std::to_string(i));
                if (i == 1) weft::Loop::current().call_soon([&] { log.push_back("cb"); });
                weft::sleep(0ms);
            }
        });
        auto b = weft::spawn([&] {
            for (int i = 0; i < 3; ++i) {
                log.push_back("B" + std::to_string(i));
                weft::sleep(0ms);
            }
        });
        log.push_back("main");
        weft::sleep(0ms);
        log.push_back("main2");
        weft::gather(a, b);
        log.push_back("end");
    });
    EXPECT_EQ(log, (std::vector<std::string>{"main", "A0", "B0", "main2", "A1", "B1", "cb", "A2", "B2", "end"}));
}

TEST(Scheduling, BusyFibersDoNotStarveTimers) {
    weft::run([] {
        bool done = false;
        auto [a, b] = spin_pair(done);
        weft::sleep(2ms);  // a timer, due while both fibers keep yielding
        done = true;
        EXPECT_LT(a.get(), kGiveUp);
        EXPECT_LT(b.get(), kGiveUp);
    });
}

TEST(Scheduling, BusyFibersDoNotStarveIo) {
    weft::run([] {
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        bool done = false;
        auto [a, b] = spin_pair(done);
        auto reader = weft::spawn([&] {
            weft::IoWaiter waiter(weft::Loop::current(), fds[0]);
            waiter.wait(weft::kReadable);  // only the poller can report this
            char c = 0;
            EXPECT_EQ(::read(fds[0], &c, 1), 1);
            done = true;
            return c;
        });
        weft::sleep(0ms);  // the reader is waiting now
        ASSERT_EQ(::write(fds[1], "x", 1), 1);
        EXPECT_EQ(reader.get(), 'x');
        EXPECT_LT(a.get(), kGiveUp);
        EXPECT_LT(b.get(), kGiveUp);
        ::close(fds[0]);
        ::close(fds[1]);
    });
}

TEST(Scheduling, BusyFibersDoNotStarveOtherThreads) {
    weft::run([] {
        bool done = false;
        auto [a, b] = spin_pair(done);
        weft::LoopHandle handle = weft::Loop::current().handle();
        std::thread other([&] { handle.call_soon_threadsafe([&] { done = true; }); });
        EXPECT_LT(a.get(), kGiveUp);
        EXPECT_LT(b.get(), kGiveUp);
        other.join();
    });
}

TEST(Scheduling, StopFromABusyFiberEndsRunForeverPromptly) {
    weft::Loop loop;
    long a_yields = 0, b_yields = 0;
    auto a = weft::create_task(loop, [&] {
        for (;;) {
            if (++a_yields == 100) weft::Loop::current().stop();
            weft::sleep(0ms);
        }
    });
    auto b = weft::create_task(loop, [&] {
        for (;;) {
            ++b_yields;
            weft::sleep(0ms);
        }
    });
    loop.run_forever();
    EXPECT_EQ(a_yields, 100);
    EXPECT_EQ(b_yields, 100);  // its turn in the step where stop() was called, no more
    loop.close();              // unwinds both
}

TEST(Scheduling, RunOnceRunsOneTurn) {
    weft::Loop loop;
    long a_yields = 0, b_yields = 0;
    auto spin = [](long& n) {
        return [&n] {
            for (;;) {
                ++n;
                weft::sleep(0ms);
            }
        };
    };
    auto a = weft::create_task(loop, spin(a_yields));
    auto b = weft::create_task(loop, spin(b_yields));
    for (long turn = 1; turn <= 3; ++turn) {
        loop.run_once(false);
        EXPECT_EQ(a_yields, turn);
        EXPECT_EQ(b_yields, turn);
    }
    loop.close();
}

// Awaiting a new task starts it straight from the awaiting fiber, and the task, finishing,
// hands the thread back the same way; the order is asyncio's (the task runs when main
// waits, main resumes once it is done) and nothing of the finished fiber stays behind.
TEST(Scheduling, SpawnAndFinishHandOffKeepOrderAndFreeTheFiber) {
    std::vector<std::string> log;
    weft::run([&] {
        auto& loop = weft::Loop::current();
        loop.call_soon([&] { log.push_back("cb"); });
        auto t = weft::spawn([&] {
            log.push_back("task");
            return 7;
        });
        log.push_back("main");
        EXPECT_EQ(t.get(), 7);
        log.push_back("joined");
        EXPECT_EQ(weft::all_tasks().size(), 1u);  // main only: the task's fiber is gone
        // Many in a row reuse the pooled stack each time (a leak would grow the pool).
        for (int i = 0; i < 10'000; ++i) EXPECT_EQ(weft::spawn([i] { return i; }).get(), i);
    });
    EXPECT_EQ(log, (std::vector<std::string>{"main", "cb", "task", "joined"}));
}

// A task cancelled before its first run, met by a hand-off, never runs its body and its
// awaiter sees Cancelled; the awaiter itself goes on normally.
TEST(Scheduling, HandOffToATaskCancelledBeforeItStarted) {
    weft::run([&] {
        bool ran = false;
        auto t = weft::spawn([&] { ran = true; });
        t.cancel();
        EXPECT_THROW(t.get(), weft::Cancelled);
        EXPECT_FALSE(ran);
        EXPECT_TRUE(t.cancelled());
        weft::sleep(0ms);  // and the awaiter still yields and resumes fine
    });
}

// A finished fire-and-forget task that hands off is freed by its successor: its exception,
// never retrieved, is still reported (with the task's name) and exactly once.
TEST(Scheduling, FinishedFiberFreedByItsSuccessorStillReports) {
    int reports = 0;
    std::string message;
    weft::run([&] {
        weft::Loop::current().set_exception_handler([&](weft::Loop&, const weft::ExceptionContext& c) {
            ++reports;
            message = c.message;
        });
        weft::spawn(weft::TaskOptions{"doomed"}, [] { throw std::runtime_error("boom"); });
        weft::sleep(0ms);  // the task runs (handed to), fails, and hands back to main
        weft::sleep(0ms);
    });
    EXPECT_EQ(reports, 1);
    EXPECT_NE(message.find("doomed"), std::string::npos) << message;
}

// A fiber alone on the loop that yields runs on without a trip through the loop's stack,
// yet every 128 turns the loop still polls: a callback queued by another thread runs.
TEST(Scheduling, LoneYieldingFiberStillLetsTheLoopPoll) {
    std::atomic<bool> seen{false};
    weft::run([&] {
        auto handle = weft::Loop::current().handle();
        std::thread other([&] { handle.call_soon_threadsafe([&] { seen = true; }); });
        long n = 0;
        while (!seen && n < kGiveUp) {
            weft::sleep(0ms);
            ++n;
        }
        other.join();
        EXPECT_TRUE(seen);
    });
}

// Every change of a fiber's state is one of the named ones (detail/fiber.hpp); debug builds
// abort on any other, saying which.
static_assert(weft::detail::state_change_allowed(weft::detail::Fiber::State::created,
                                                 weft::detail::Fiber::State::running));
static_assert(weft::detail::state_change_allowed(weft::detail::Fiber::State::done,
                                                 weft::detail::Fiber::State::freed));
static_assert(!weft::detail::state_change_allowed(weft::detail::Fiber::State::suspended,
                                                  weft::detail::Fiber::State::running));
static_assert(!weft::detail::state_change_allowed(weft::detail::Fiber::State::running,
                                                  weft::detail::Fiber::State::freed));

#ifndef NDEBUG
TEST(FiberStateDeathTest, IllegalChangeAborts) {
    using State = weft::detail::Fiber::State;
    weft::detail::Fiber f;  // created
    EXPECT_DEATH(weft::detail::set_state(&f, State::freed),
                 "illegal fiber state change created -> freed");
    weft::detail::set_state(&f, State::running);
    weft::detail::set_state(&f, State::suspended);
    EXPECT_DEATH(weft::detail::set_state(&f, State::done),
                 "illegal fiber state change suspended -> done");
    EXPECT_DEATH(weft::detail::expect_state(&f, State::running),
                 "is suspended where running was expected");
}
#endif
