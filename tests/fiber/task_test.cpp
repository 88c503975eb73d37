// Task<T>: spawn, results, names, cancellation (asyncio semantics), fire-and-forget,
// never-retrieved exceptions, current_task / all_tasks, run().
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
std::vector<weft::ExceptionContext> g_reports;
void capture_reports(weft::Loop& loop) {
    g_reports.clear();
    loop.set_exception_handler(
        [](weft::Loop&, const weft::ExceptionContext& c) { g_reports.push_back(c); });
}
}  // namespace

TEST(Task, SpawnReturnsTheResult) {
    int got = weft::run([] {
        auto t = weft::spawn([](int a, int b) { return a + b; }, 2, 3);
        return t.get() * 10;
    });
    EXPECT_EQ(got, 50);
}

TEST(Task, NestedAwaitIsAPlainCall) {
    auto inner = [] {
        weft::sleep(1ms);
        return std::string("inner");
    };
    auto got = weft::run([&] { return inner() + "+outer"; });
    EXPECT_EQ(got, "inner+outer");
}

TEST(Task, ExceptionPropagatesThroughGetAndRun) {
    EXPECT_THROW(weft::run([] {
                     auto t = weft::spawn([]() -> int { throw std::runtime_error("task failed"); });
                     return t.get();
                 }),
                 std::runtime_error);
}

TEST(Task, QueriesBeforeAndAfter) {
    weft::run([] {
        auto t = weft::spawn([] {
            weft::sleep(2ms);
            return 5;
        });
        EXPECT_FALSE(t.done());
        EXPECT_THROW(t.result(), weft::InvalidStateError);
        EXPECT_EQ(t.get(), 5);
        EXPECT_TRUE(t.done());
        EXPECT_FALSE(t.cancelled());
        EXPECT_EQ(t.result(), 5);
    });
}

TEST(Task, NamesDefaultAndSet) {
    weft::run([] {
        auto a = weft::spawn([] {});
        EXPECT_EQ(a.get_name().rfind("Task-", 0), 0u) << a.get_name();
        auto b = weft::spawn(weft::TaskOptions{"worker"}, [] { return weft::current_task().get_name(); });
        EXPECT_EQ(b.get(), "worker");
        b.set_name("renamed");
        EXPECT_EQ(b.get_name(), "renamed");
        EXPECT_EQ(weft::current_task().get_name(), "main");
        a.get();
    });
}

TEST(Task, LoopCreateTask) {
    weft::Loop loop;
    auto t = weft::create_task(loop, [] { return 3; }, "via-loop");
    EXPECT_EQ(t.get_name(), "via-loop");
    t.add_done_callback([&](auto&) { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(t.result(), 3);
}

TEST(Task, CurrentTaskIsEmptyOutsideFibers) {
    EXPECT_FALSE(weft::current_task());
}

TEST(Task, AllTasksListsPendingOnes) {
    weft::run([] {
        auto a = weft::spawn(weft::TaskOptions{"a"}, [] { weft::sleep(5ms); });
        auto b = weft::spawn(weft::TaskOptions{"b"}, [] { weft::sleep(5ms); });
        auto names = [] {
            std::vector<std::string> n;
            for (auto& t : weft::all_tasks()) n.push_back(t.get_name());
            std::sort(n.begin(), n.end());
            return n;
        };
        EXPECT_EQ(names(), (std::vector<std::string>{"a", "b", "main"}));
        a.get();
        b.get();
        EXPECT_EQ(names(), (std::vector<std::string>{"main"}));
    });
}

TEST(Task, CancelWhileSuspendedThrowsAtTheSuspensionPoint) {
    weft::run([] {
        bool cleaned = false;
        auto t = weft::spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled& c) {
                EXPECT_EQ(c.message(), "bye");
                cleaned = true;
                throw;
            }
        });
        weft::sleep(1ms);
        EXPECT_TRUE(t.cancel("bye"));
        EXPECT_FALSE(t.done());  // cancellation is a request: it lands at the next turn
        EXPECT_THROW(t.get(), weft::Cancelled);
        EXPECT_TRUE(t.cancelled());
        EXPECT_TRUE(cleaned);
        EXPECT_FALSE(t.cancel());  // already done
    });
}

TEST(Task, CancelBeforeStartNeverRunsTheBody) {
    weft::run([] {
        bool ran = false;
        auto t = weft::spawn([&] { ran = true; });
        t.cancel();
        EXPECT_THROW(t.get(), weft::Cancelled);
        EXPECT_FALSE(ran);
        EXPECT_TRUE(t.cancelled());
    });
}

TEST(Task, CancelAfterCompletionIsFalse) {
    weft::run([] {
        auto t = weft::spawn([] { return 1; });
        t.get();
        EXPECT_FALSE(t.cancel());
        EXPECT_EQ(t.result(), 1);
    });
}

TEST(Task, CleanupMaySuspend) {
    weft::run([] {
        std::vector<std::string> log;
        auto t = weft::spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                weft::sleep(1ms);  // asynchronous clean-up
                log.push_back("cleaned");
                throw;
            }
        });
        weft::sleep(0ms);
        t.cancel();
        EXPECT_THROW(t.get(), weft::Cancelled);
        EXPECT_EQ(log, std::vector<std::string>{"cleaned"});
    });
}

TEST(Task, SwallowedCancellationCompletesNormally) {
    weft::run([] {
        auto t = weft::spawn([] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                return 7;
            }
            return 0;
        });
        weft::sleep(0ms);
        t.cancel();
        EXPECT_EQ(t.get(), 7);
        EXPECT_FALSE(t.cancelled());
    });
}

TEST(Task, SelfCancelThrowsAtNextSuspension) {
    weft::run([] {
        auto t = weft::spawn([] {
            weft::current_task().cancel("self");
            weft::sleep(0ms);
            ADD_FAILURE() << "sleep returned";
        });
        EXPECT_THROW(t.get(), weft::Cancelled);
    });
}

TEST(Task, CancellingTheAwaiterCancelsTheAwaitedTask) {
    weft::run([] {
        auto inner = weft::spawn([] { weft::sleep(1h); });
        auto outer = weft::spawn([&] { inner.get(); });
        weft::sleep(1ms);
        outer.cancel();
        EXPECT_THROW(outer.get(), weft::Cancelled);
        EXPECT_THROW(inner.get(), weft::Cancelled);
        EXPECT_TRUE(inner.cancelled());
    });
}

TEST(Task, FireAndForgetRunsToCompletion) {
    int done = 0;
    weft::run([&] {
        for (int i = 0; i < 100; ++i)
            weft::spawn([&] {
                weft::sleep(1ms);
                ++done;
            });  // handle dropped at once
        for (int i = 0; i < 5000 && done < 100; ++i) weft::sleep(1ms);
    });
    EXPECT_EQ(done, 100);
}

TEST(Task, UnheldTaskExceptionIsReportedAtCompletion) {
    weft::Loop loop;
    capture_reports(loop);
    weft::create_task(loop, [] { throw std::runtime_error("forgotten"); }, "orphan");
    loop.run_once(false);
    ASSERT_EQ(g_reports.size(), 1u);  // deterministic: at completion, not at some later GC
    EXPECT_NE(g_reports[0].message.find("Task 'orphan' exception was never retrieved"),
              std::string::npos)
        << g_reports[0].message;
}

TEST(Task, HeldTaskExceptionIsReportedWhenTheLastHandleDrops) {
    weft::Loop loop;
    capture_reports(loop);
    {
        auto t = weft::create_task(loop, [] { throw std::runtime_error("held"); }, "held");
        loop.run_once(false);
        EXPECT_TRUE(t.done());
        EXPECT_TRUE(g_reports.empty());
    }
    ASSERT_EQ(g_reports.size(), 1u);
    {
        auto t = weft::create_task(loop, [] { throw std::runtime_error("asked"); }, "asked");
        loop.run_once(false);
        EXPECT_NE(t.exception(), nullptr);
    }
    EXPECT_EQ(g_reports.size(), 1u);  // retrieved: not reported
}

TEST(Task, SuspendingOutsideAFiberIsAClearError) {
    try {
        weft::sleep(1ms);
        FAIL();
    } catch (const weft::InvalidStateError& e) {
        EXPECT_NE(std::string(e.what()).find("sleep"), std::string::npos);
    }
}

TEST(Task, ManyTasksInterleave) {
    std::vector<int> log;
    weft::run([&] {
        auto a = weft::spawn([&] {
            for (int i = 0; i < 3; ++i) {
                log.push_back(1);
                weft::sleep(0ms);
            }
        });
        auto b = weft::spawn([&] {
            for (int i = 0; i < 3; ++i) {
                log.push_back(2);
                weft::sleep(0ms);
            }
        });
        a.get();
        b.get();
    });
    EXPECT_EQ(log, (std::vector<int>{1, 2, 1, 2, 1, 2}));
}

TEST(Task, StackSizePerSpawn) {
    weft::run([] {
        auto t = weft::spawn(weft::TaskOptions{"big", 4 * 1024 * 1024}, [] {
            volatile char buf[2 * 1024 * 1024];  // would overflow a 256 KiB stack
            buf[0] = 1;
            buf[sizeof buf - 1] = 2;
            return buf[0] + buf[sizeof buf - 1];
        });
        EXPECT_EQ(t.get(), 3);
    });
}

TEST(Sleep, ReturnsTheGivenResult) {
    auto r = weft::run([] { return weft::sleep(2ms, std::string("done")); });
    EXPECT_EQ(r, "done");
}

// asyncio: a negative delay is a sleep(0) — it yields, it does not fail.
TEST(Sleep, NegativeDelayYieldsLikeZero) {
    weft::run([] {
        bool other_ran = false;
        weft::spawn([&] { other_ran = true; });
        weft::sleep(-1ms);
        EXPECT_TRUE(other_ran);
        EXPECT_EQ(weft::sleep(-5s, 3), 3);
    });
}

TEST(Sleep, ZeroYieldsToOtherReadyWork) {
    weft::run([] {
        bool other_ran = false;
        weft::spawn([&] { other_ran = true; });
        weft::sleep(0ms);
        EXPECT_TRUE(other_ran);
    });
}

TEST(Task, CancelledAwaiterWaitsForTheAwaitedTaskToFinishCancelling) {
    weft::run([] {
        std::vector<std::string> log;
        auto outer = weft::spawn([&] {
            std::vector<std::string> frame_local{"alive"};  // the inner task uses this
            auto inner = weft::spawn([&] {
                try {
                    weft::sleep(1h);
                } catch (const weft::Cancelled&) {
                    weft::sleep(2ms);  // slow clean-up that touches outer's frame
                    log.push_back("inner cleaned up: " + frame_local[0]);
                    throw;
                }
            });
            try {
                inner.get();
            } catch (const weft::Cancelled&) {
                log.push_back("outer unwinding");
                throw;
            }
        });
        weft::sleep(1ms);
        outer.cancel();
        EXPECT_THROW(outer.get(), weft::Cancelled);
        EXPECT_EQ(log, (std::vector<std::string>{"inner cleaned up: alive", "outer unwinding"}));
    });
}
