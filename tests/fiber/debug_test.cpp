// Debug mode (slow callbacks and fiber slices, wrong-thread calls, never-awaited futures)
// and dump_tasks with the call stacks of suspended fibers.
#include <weft/weft.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
void busy(std::chrono::milliseconds d) {
    auto until = weft::Clock::now() + d;
    while (weft::Clock::now() < until) {
    }
}
}  // namespace

// External linkage, so -rdynamic puts its name in the dump.
__attribute__((noinline)) void park_here_for_the_dump(weft::Event& ev) {
    ev.wait();
    asm volatile("");  // not a tail call: keep this frame on the stack
}

TEST(Debug, SlowCallbackIsReportedWithItsSource) {
    weft::Loop loop;
    loop.set_debug(true);
    loop.set_slow_callback_duration(20ms);
    std::vector<weft::ExceptionContext> seen;
    loop.set_exception_handler([&](weft::Loop&, const weft::ExceptionContext& c) { seen.push_back(c); });
    loop.call_soon([] { busy(30ms); });
    loop.call_soon([] {});  // fast: not reported
    loop.run_once(false);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_NE(seen[0].message.find("Executing callback debug_test.cpp:"), std::string::npos)
        << seen[0].message;
    EXPECT_NE(seen[0].message.find(" seconds"), std::string::npos);
}

TEST(Debug, NothingIsTimedWhenDebugIsOff) {
    weft::Loop loop;
    loop.set_slow_callback_duration(1ms);
    int reports = 0;
    loop.set_exception_handler([&](weft::Loop&, const weft::ExceptionContext&) { ++reports; });
    loop.call_soon([] { busy(5ms); });
    loop.run_once(false);
    EXPECT_EQ(reports, 0);
}

TEST(Debug, SlowFiberSliceNamesTheTaskAndWhereItWaits) {
    std::vector<weft::ExceptionContext> seen;
    weft::RunOptions options;
    options.debug = true;
    weft::run(
        [&] {
            auto& loop = weft::Loop::current();
            loop.set_slow_callback_duration(20ms);
            loop.set_exception_handler(
                [&](weft::Loop&, const weft::ExceptionContext& c) { seen.push_back(c); });
            auto t = weft::spawn(weft::TaskOptions{"slowpoke"}, [] {
                busy(30ms);        // holds the loop
                weft::sleep(5ms);  // ...then waits here
            });
            t.get();
        },
        options);
    const weft::ExceptionContext* report = nullptr;
    for (const auto& c : seen)
        if (c.message.find("Executing Task 'slowpoke' took") != std::string::npos) report = &c;
    ASSERT_NE(report, nullptr);
    EXPECT_NE(report->source.find("now waiting at"), std::string::npos) << report->source;
    EXPECT_NE(report->source.find("weft::sleep"), std::string::npos) << report->source;
}

TEST(Debug, WrongThreadCallIsAnError) {
    weft::Loop loop;
    loop.set_debug(true);
    bool threw = false;
    std::thread other([&] {
        try {
            loop.call_soon([] {});
        } catch (const weft::InvalidStateError&) {
            threw = true;
        }
    });
    other.join();
    EXPECT_TRUE(threw);
    loop.call_soon_threadsafe([] {});  // the right way still works
    loop.run_once(false);
}

TEST(Debug, NeverAwaitedFutureIsReported) {
    weft::Loop loop;
    loop.set_debug(true);
    std::vector<std::string> messages;
    loop.set_exception_handler(
        [&](weft::Loop&, const weft::ExceptionContext& c) { messages.push_back(c.message); });
    { weft::Future<int> forgotten(loop); }
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_NE(messages[0].find("never awaited"), std::string::npos);
}

TEST(DumpTasks, ShowsStatesAndSuspendedStacks) {
    weft::run([] {
        weft::Event ev;
        auto sleeper = weft::spawn(weft::TaskOptions{"sleeper"}, [] {
            weft::sleep(1h);
            return 1;
        });
        auto parked = weft::spawn(weft::TaskOptions{"parked"}, [&] {
            park_here_for_the_dump(ev);
            return 2;
        });
        weft::sleep(1ms);
        auto fresh = weft::spawn(weft::TaskOptions{"fresh"}, [] { return 3; });
        std::string dump = weft::dump_tasks();
        EXPECT_NE(dump.find("4 task(s)"), std::string::npos) << dump;
        EXPECT_NE(dump.find("Task 'sleeper' (suspended: sleep, deadline in 3599."), std::string::npos)
            << dump;
        EXPECT_NE(dump.find("weft::sleep"), std::string::npos) << dump;
        EXPECT_NE(dump.find("Task 'parked' (suspended: Event::wait)"), std::string::npos) << dump;
        EXPECT_NE(dump.find("park_here_for_the_dump"), std::string::npos) << dump;
        EXPECT_NE(dump.find("Task 'fresh' (not started)"), std::string::npos) << dump;
        EXPECT_NE(dump.find("Task 'main' (running)"), std::string::npos) << dump;
        auto tasks = weft::task_snapshot(weft::Loop::current(), false);
        for (const weft::TaskInfo& t : tasks)  // only suspended tasks wait for something
            EXPECT_EQ(t.waiting.empty(), t.state != "suspended") << t.name;
        // Taking the stacks did not disturb the fibers: they resume and finish normally.
        ev.set();
        EXPECT_EQ(parked.get(), 2);
        EXPECT_EQ(fresh.get(), 3);
        weft::dump_tasks();  // twice in a row on the same suspended fiber is fine too
        sleeper.cancel();
        EXPECT_THROW(sleeper.get(), weft::Cancelled);
    });
}

// Each kind of wait says what it waits on, as gdb's `weft tasks` shows it too.
TEST(DumpTasks, SaysWhatEachTaskWaitsFor) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    weft::run([&] {
        weft::Lock lock;
        weft::Queue<int> queue;
        lock.acquire();
        auto locker = weft::spawn(weft::TaskOptions{"locker"}, [&] { lock.acquire(); lock.release(); });
        auto getter = weft::spawn(weft::TaskOptions{"getter"}, [&] { return queue.get(); });
        auto joiner = weft::spawn(weft::TaskOptions{"joiner"}, [&] { return getter.get(); });
        auto reader = weft::spawn(weft::TaskOptions{"reader"}, [&] {
            weft::IoWaiter waiter(weft::Loop::current(), fds[0]);
            waiter.wait(weft::kReadable);
        });
        auto gatherer = weft::spawn(weft::TaskOptions{"gatherer"}, [&] { weft::gather(locker, reader); });
        weft::sleep(1ms);
        std::map<std::string, std::string> waits;
        for (const weft::TaskInfo& t : weft::task_snapshot(weft::Loop::current(), false))
            waits[t.name] = t.waiting;
        EXPECT_EQ(waits["locker"], "Lock::acquire");
        EXPECT_EQ(waits["getter"], "Queue::get");
        EXPECT_EQ(waits["joiner"], "Task::get");
        EXPECT_EQ(waits["reader"], "read fd " + std::to_string(fds[0]));
        EXPECT_EQ(waits["gatherer"], "gather");
        EXPECT_EQ(waits["main"], "");  // running
        lock.release();
        queue.put_nowait(7);
        EXPECT_EQ(joiner.get(), 7);
        ASSERT_EQ(::write(fds[1], "x", 1), 1);
        gatherer.get();
    });
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(Debug, CompletingAFutureFromAnotherThreadIsAnError) {
    weft::RunOptions options;
    options.debug = true;
    weft::run(
        [] {
            weft::Future<int> f;
            auto waiter = weft::spawn([&] { return f.get(); });
            weft::sleep(0ms);
            bool threw = false;
            std::thread other([&] {
                try {
                    f.set_result(1);  // must throw, not terminate inside a wake-up
                } catch (const weft::InvalidStateError&) {
                    threw = true;
                }
            });
            other.join();
            EXPECT_TRUE(threw);
            f.set_result(2);  // the right thread
            EXPECT_EQ(waiter.get(), 2);
        },
        options);
}
