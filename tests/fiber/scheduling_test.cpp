// The order fibers run in, and that busy fibers starve nothing. A fiber that suspends
// hands the thread straight to the next ready fiber, even across turns when the loop's
// next turn would have nothing else to do (Loop::peek_ready); these tests pin down that
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
