// The turn order documented in loop.hpp: due timers, then the ready entries queued when
// the ready step began, then poll (I/O and thread-safe submissions become ready entries).
#include <weft/io_watch.hpp>
#include <weft/loop.hpp>

#include <unistd.h>

#include <csignal>

#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(LoopOrder, TimersRunBeforeReadyCallbacksOfTheSameTurn) {
    weft::Loop loop;
    std::vector<std::string> log;
    loop.call_at(loop.time() - 1s, [&] { log.push_back("timer"); });
    loop.call_soon([&] { log.push_back("soon"); });
    loop.run_once(false);
    EXPECT_EQ(log, (std::vector<std::string>{"timer", "soon"}));
}

TEST(LoopOrder, CallbacksQueuedDuringReadyStepWaitForNextTurn) {
    weft::Loop loop;
    std::vector<std::string> log;
    loop.call_soon([&] {
        log.push_back("a");
        loop.call_soon([&] { log.push_back("c"); });
    });
    loop.call_soon([&] { log.push_back("b"); });
    loop.run_once(false);
    EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
    loop.run_once(false);
    EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(LoopOrder, TimerScheduledByTimerWaitsForNextTurn) {
    weft::Loop loop;
    int fired = 0;
    loop.call_at(loop.time() - 1s, [&] {
        ++fired;
        loop.call_at(loop.time() - 1s, [&] { ++fired; });
    });
    loop.run_once(false);
    EXPECT_EQ(fired, 1);
    loop.run_once(false);
    EXPECT_EQ(fired, 2);
}

TEST(LoopOrder, IoReadinessFromPollRunsInTheNextReadyStep) {
    weft::Loop loop;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::vector<std::string> log;
    weft::IoWatch watch(loop, fds[0], weft::kReadable, [&](uint32_t) { log.push_back("io"); });
    ASSERT_EQ(::write(fds[1], "x", 1), 1);
    loop.call_soon([&] { log.push_back("soon"); });
    loop.run_once(false);  // ready: "soon"; poll sees the pipe and queues the I/O entry
    EXPECT_EQ(log, (std::vector<std::string>{"soon"}));
    loop.call_at(loop.time() - 1s, [&] { log.push_back("timer"); });
    loop.run_once(false);  // timers first, then the I/O entry
    EXPECT_EQ(log, (std::vector<std::string>{"soon", "timer", "io"}));
    watch.reset();
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(LoopOrder, ThreadsafeSubmissionsLandInPollStep) {
    weft::Loop loop;
    std::vector<std::string> log;
    loop.call_soon_threadsafe([&] { log.push_back("threadsafe"); });
    loop.call_soon([&] { log.push_back("soon"); });
    loop.run_once(false);
    EXPECT_EQ(log, (std::vector<std::string>{"soon"}));
    loop.run_once(false);
    EXPECT_EQ(log, (std::vector<std::string>{"soon", "threadsafe"}));
}

namespace {
// A chain of callbacks that each schedule the next until `stop_when` says so: a loop that
// always has work ready. Returns how many links ran.
struct Chain {
    weft::Loop& loop;
    const bool& stop_when;
    int links = 0;
    void step() {
        ++links;
        if (stop_when || links > 100'000) {
            loop.stop();
            return;
        }
        loop.call_soon([this] { step(); });
    }
};
}  // namespace

// Fairness: while callbacks stay ready the loop skips its look at the OS, but for at most
// 128 turns (loop.hpp), so a busy chain cannot starve I/O.
TEST(LoopOrder, BusyCallbacksDoNotStarveIo) {
    weft::Loop loop;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    bool io_ran = false;
    weft::IoWatch watch(loop, fds[0], weft::kReadable, [&](uint32_t) { io_ran = true; });
    Chain chain{loop, io_ran};
    loop.call_soon([&] {
        ASSERT_EQ(::write(fds[1], "x", 1), 1);
        chain.step();
    });
    loop.run_forever();
    EXPECT_TRUE(io_ran);
    EXPECT_GE(chain.links, 2);    // the chain did run on before the look at the OS ...
    EXPECT_LE(chain.links, 131);  // ... which came within the budget of 128 turns
    watch.reset();
    ::close(fds[0]);
    ::close(fds[1]);
}

// With no fd watched the loop makes no zero-timeout poll at all while callbacks stay
// ready, but still takes thread-safe submissions every turn.
TEST(LoopOrder, BusyCallbacksStillTakeSubmissionsEveryTurn) {
    weft::Loop loop;
    bool submitted_ran = false;
    Chain chain{loop, submitted_ran};
    loop.call_soon([&] {
        chain.step();
        loop.call_soon_threadsafe([&] { submitted_ran = true; });
    });
    loop.run_forever();
    EXPECT_TRUE(submitted_ran);
    EXPECT_LE(chain.links, 4);  // taken by the turn in which it was submitted
}

// A signal handler's pipe alone does not make a busy loop look at the OS every 128 turns
// (nothing else could arrive there), but a signal that arrives makes the next turn look:
// its handler runs a turn or two later, not when the chain ends.
TEST(LoopOrder, BusyCallbacksStillSeeSignals) {
    weft::Loop loop;
    bool handled = false;
    loop.add_signal_handler(SIGUSR1, [&] { handled = true; });
    Chain chain{loop, handled};
    loop.call_soon([&] {
        chain.step();
        ::raise(SIGUSR1);
    });
    loop.run_forever();
    EXPECT_TRUE(handled);
    EXPECT_LE(chain.links, 6);
    loop.remove_signal_handler(SIGUSR1);
}
