// gather, wait, wait_for, as_completed, timeout scopes, shield — asyncio as the reference.
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "../common/scale.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
auto after(std::chrono::milliseconds d, int v) {
    return [d, v] {
        weft::sleep(d);
        return v;
    };
}
}  // namespace

TEST(Gather, VariadicResultsInInputOrder) {
    weft::run([] {
        auto t = weft::spawn(after(5ms, 1));
        weft::Future<std::string> f;
        weft::Loop::current().call_later(1ms, [f]() mutable { f.set_result("fut"); });
        auto [a, b, c, d] = weft::gather(t, f, after(2ms, 3), [] {});
        EXPECT_EQ(a, 1);
        EXPECT_EQ(b, "fut");
        EXPECT_EQ(c, 3);
        static_assert(std::is_same_v<decltype(d), std::monostate>);
    });
}

TEST(Gather, RangeResultsInInputOrder) {
    weft::run([] {
        std::vector<weft::Task<int>> tasks;
        for (int i = 0; i < 10; ++i) tasks.push_back(weft::spawn(after(std::chrono::milliseconds(10 - i), i)));
        auto results = weft::gather(tasks);
        for (int i = 0; i < 10; ++i) EXPECT_EQ(results[size_t(i)], i);
    });
}

TEST(Gather, OfFinishedTasksReturnsWithoutSuspending) {
    weft::run([] {
        auto a = weft::spawn([] { return 1; });
        auto b = weft::spawn([] { return 2; });
        weft::sleep(1ms);
        ASSERT_TRUE(a.done() && b.done());
        auto [x, y] = weft::gather(a, b);
        EXPECT_EQ(x + y, 3);
        std::vector<weft::Task<int>> none;
        EXPECT_TRUE(weft::gather(none).empty());
    });
}

TEST(Gather, FirstExceptionPropagatesOthersKeepRunning) {
    weft::run([] {
        weft::Event release;
        auto slow = weft::spawn([&] {
            release.wait();
            return 1;
        });
        auto bad = weft::spawn([]() -> int {
            weft::sleep(1ms);
            throw std::runtime_error("bad");
        });
        EXPECT_THROW(weft::gather(slow, bad), std::runtime_error);
        EXPECT_FALSE(slow.done());  // not cancelled: still running
        release.set();
        EXPECT_EQ(slow.get(), 1);
    });
}

// asyncio's _done_callback: once gather has raised the first failure, the children that
// fail after it are marked retrieved — no "exception was never retrieved" for them.
TEST(Gather, LaterFailuresAfterTheFirstAreNotReportedAsNeverRetrieved) {
    testing::internal::CaptureStderr();
    weft::run([] {
        EXPECT_THROW(weft::gather([]() -> int { throw std::runtime_error("first"); },
                                  [] {
                                      weft::sleep(2ms);
                                      throw std::runtime_error("second");
                                  },
                                  [] {
                                      weft::sleep(3ms);
                                      throw std::runtime_error("third");
                                  }),
                     std::runtime_error);
        weft::sleep(10ms);  // the others fail now, with nobody holding them
    });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.find("never retrieved"), std::string::npos) << err;
}

// asyncio starts gather's coroutines in argument order; so does weft with callables.
TEST(Gather, CallablesStartInArgumentOrder) {
    weft::run([] {
        std::vector<int> started;
        auto mark = [&](int i) {
            return [&started, i] {
                started.push_back(i);
                return i;
            };
        };
        auto [a, b, c] = weft::gather(mark(1), mark(2), mark(3));
        EXPECT_EQ(started, (std::vector<int>{1, 2, 3}));
        EXPECT_EQ(a + b + c, 6);
        started.clear();
        weft::gather(weft::return_exceptions, mark(1), mark(2));
        EXPECT_EQ(started, (std::vector<int>{1, 2}));
    });
}

TEST(Gather, ReturnExceptionsGivesOutcomes) {
    weft::run([] {
        auto [a, b] = weft::gather(weft::return_exceptions, after(1ms, 5),
                                   []() -> int { throw std::runtime_error("x"); });
        EXPECT_TRUE(a.ok());
        EXPECT_EQ(a.value(), 5);
        EXPECT_FALSE(b.ok());
        EXPECT_THROW(b.value(), std::runtime_error);
        std::vector<weft::Task<int>> ts{weft::spawn(after(1ms, 1)), weft::spawn([]() -> int {
                                            throw std::logic_error("y");
                                        })};
        auto outs = weft::gather(weft::return_exceptions, ts);
        EXPECT_TRUE(outs[0].ok());
        EXPECT_NE(outs[1].error(), nullptr);
    });
}

TEST(Gather, CancellingGatherCancelsChildren) {
    weft::run([] {
        auto a = weft::spawn(after(1h, 1));
        auto b = weft::spawn(after(1h, 2));
        auto g = weft::spawn([&] { return std::get<0>(weft::gather(a, b)); });
        weft::sleep(1ms);
        g.cancel();
        EXPECT_THROW(g.get(), weft::Cancelled);
        weft::sleep(0ms);
        EXPECT_TRUE(a.cancelled());
        EXPECT_TRUE(b.cancelled());
    });
}

TEST(Gather, TenThousandTasks) {
    weft::run([] {
        std::vector<weft::Task<int>> tasks;
        const int n = weft::testing::live_fibers(10000);
        for (int i = 0; i < n; ++i)
            tasks.push_back(weft::spawn([i] {
                weft::sleep(0ms);
                return i;
            }));
        auto r = weft::gather(tasks);
        long sum = 0;
        for (int v : r) sum += v;
        EXPECT_EQ(sum, long(n) * (n - 1) / 2);
    });
}

TEST(Wait, FirstCompleted) {
    weft::run([] {
        std::vector<weft::Task<int>> ts{weft::spawn(after(1h, 1)), weft::spawn(after(1ms, 2))};
        auto [done, pending] = weft::wait(ts, weft::ReturnWhen::first_completed);
        ASSERT_EQ(done.size(), 1u);
        EXPECT_EQ(done[0].result(), 2);
        ASSERT_EQ(pending.size(), 1u);
        pending[0].cancel();
    });
}

TEST(Wait, FirstException) {
    weft::run([] {
        std::vector<weft::Task<int>> ts{weft::spawn(after(1ms, 1)), weft::spawn([]() -> int {
                                            weft::sleep(3ms);
                                            throw std::runtime_error("e");
                                        }),
                                        weft::spawn(after(1h, 3))};
        auto r = weft::wait(ts, weft::ReturnWhen::first_exception);
        EXPECT_EQ(r.done.size(), 2u);
        EXPECT_EQ(r.pending.size(), 1u);
        EXPECT_NE(ts[1].exception(), nullptr);
        r.pending[0].cancel();
    });
}

TEST(Wait, AllCompletedWithTimeoutReturnsPending) {
    weft::run([] {
        std::vector<weft::Task<int>> ts{weft::spawn(after(1ms, 1)), weft::spawn(after(1h, 2))};
        auto start = weft::Clock::now();
        auto r = weft::wait(ts, weft::ReturnWhen::all_completed, 20ms);
        EXPECT_GE(weft::Clock::now() - start, 20ms);
        EXPECT_EQ(r.done.size(), 1u);
        ASSERT_EQ(r.pending.size(), 1u);
        EXPECT_FALSE(r.pending[0].done());  // wait never cancels
        r.pending[0].cancel();
    });
}

TEST(WaitFor, ReturnsTheResultInTime) {
    // 1 ms against 10 s: even a CI machine that stalls for a second or two between setting
    // the deadline and starting the task cannot turn this into a timeout.
    EXPECT_EQ(weft::run([] { return weft::wait_for(after(1ms, 7), 10s); }), 7);
}

TEST(WaitFor, TimeoutCancelsAndWaitsForTheInnerTask) {
    weft::run([] {
        std::vector<std::string> log;
        auto inner = weft::spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                weft::sleep(2ms);  // slow clean-up: wait_for must wait for it
                log.push_back("inner cleaned up");
                throw;
            }
        });
        EXPECT_THROW(weft::wait_for(inner, 5ms), weft::TimeoutError);
        EXPECT_EQ(log, std::vector<std::string>{"inner cleaned up"});
        EXPECT_TRUE(inner.cancelled());
    });
}

TEST(WaitFor, CancelDuringTimeoutWait) {
    weft::run([] {
        auto inner = weft::spawn(after(1h, 1));
        auto outer = weft::spawn([&] { return weft::wait_for(inner, 1h); });
        weft::sleep(1ms);
        outer.cancel();
        EXPECT_THROW(outer.get(), weft::Cancelled);
        EXPECT_TRUE(inner.cancelled());
    });
}

TEST(WaitFor, OnAFuture) {
    weft::run([] {
        weft::Future<int> never;
        EXPECT_THROW(weft::wait_for(never, 2ms), weft::TimeoutError);
        EXPECT_TRUE(never.cancelled());
    });
}

TEST(AsCompleted, YieldsInCompletionOrder) {
    weft::run([] {
        // Completion order is forced with events, so it does not depend on timing.
        weft::Event go1, go2, go3;
        auto when = [](weft::Event& ev, int v) {
            return [&ev, v] {
                ev.wait();
                return v;
            };
        };
        std::vector<weft::Task<int>> ts{weft::spawn(when(go3, 3)), weft::spawn(when(go1, 1)),
                                        weft::spawn(when(go2, 2))};
        std::vector<int> order;
        go1.set();
        for (auto& t : weft::as_completed(ts)) {
            order.push_back(t.result());
            if (order.size() == 1) go2.set();
            if (order.size() == 2) go3.set();
        }
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    });
}

TEST(Timeout, ScopeConvertsToTimeoutError) {
    weft::run([] {
        bool cleaned = false;
        EXPECT_THROW(weft::timeout(5ms,
                                   [&] {
                                       try {
                                           weft::sleep(1h);
                                       } catch (const weft::Cancelled&) {
                                           cleaned = true;
                                           throw;
                                       }
                                   }),
                     weft::TimeoutError);
        EXPECT_TRUE(cleaned);
        weft::sleep(1ms);  // the task itself is not left cancelled
    });
}

TEST(Timeout, NoTimeoutReturnsTheValue) {
    EXPECT_EQ(weft::run([] { return weft::timeout(10s, [] { return 4; }); }), 4);
    // 10 s, not 1: a stalled CI machine must not make the 1 ms sleep miss the deadline.
    EXPECT_EQ(weft::run([] { return weft::timeout_at(weft::Clock::now() + 10s, after(1ms, 5)); }), 5);
}

TEST(Timeout, ExpiryThatNeverLandedDoesNotLeakACancel) {
    weft::run([] {
        weft::timeout(1ms, [] {
            weft::DeferCancellation defer;
            weft::sleep(5ms);  // the deadline passes here, but its cancel is deferred
        });
        weft::sleep(1ms);  // the scope took its cancel back: this must not throw
        EXPECT_EQ(weft::current_task().cancelling(), 0u);
    });
}

TEST(Timeout, AnOutsideCancelIsNotTurnedIntoTimeoutError) {
    weft::run([] {
        for (int attempt = 1;; ++attempt) {
            auto deadline = weft::Clock::now() + 2ms;
            auto t = weft::spawn([&] { weft::timeout_at(deadline, [] { weft::sleep(1h); }); });
            weft::sleep(0ms);  // t is inside the scope; its timer was added first
            // Both timers must be pending when the deadline comes. If a stalled CI machine
            // let it pass already, the scope's timer may have fired alone: try again.
            if (weft::Clock::now() >= deadline && attempt < 10) {
                t.cancel();
                try {
                    t.get();
                } catch (const weft::Cancelled&) {     // cancelled here
                } catch (const weft::TimeoutError&) {  // or its deadline came first
                }
                continue;
            }
            // Cancel from a timer with the same deadline: the scope's own timer fires first,
            // then this one, all before t runs again. t must see Cancelled, not TimeoutError.
            weft::Loop::current().call_at(deadline, [t]() mutable { t.cancel("from outside"); });
            EXPECT_THROW(t.get(), weft::Cancelled);
            break;
        }
    });
}

TEST(Timeout, NestedInnerExpires) {
    weft::run([] {
        auto r = weft::timeout(10s, [] {  // far beyond the inner 2 ms, even on a stalled machine
            try {
                weft::timeout(2ms, [] { weft::sleep(1h); });
            } catch (const weft::TimeoutError&) {
                return std::string("inner timed out");
            }
            return std::string("no");
        });
        EXPECT_EQ(r, "inner timed out");
    });
}

TEST(Shield, CancellingTheCallerLeavesTheInnerRunning) {
    weft::run([] {
        auto inner = weft::spawn(after(5ms, 9));
        auto outer = weft::spawn([&] { return weft::shield(inner); });
        weft::sleep(1ms);
        outer.cancel();
        EXPECT_THROW(outer.get(), weft::Cancelled);
        EXPECT_FALSE(inner.cancelled());
        EXPECT_EQ(inner.get(), 9);
    });
}

TEST(DeferCancellation, CancelLandsAfterTheScope) {
    weft::run([] {
        std::vector<std::string> log;
        auto t = weft::spawn([&] {
            {
                weft::DeferCancellation defer;
                weft::sleep(5ms);  // cancelled meanwhile: does not throw here
                log.push_back("tear-down finished");
            }
            weft::sleep(1ms);  // throws here
            log.push_back("not reached");
        });
        weft::sleep(1ms);
        t.cancel();
        EXPECT_THROW(t.get(), weft::Cancelled);
        EXPECT_EQ(log, std::vector<std::string>{"tear-down finished"});
    });
}

TEST(WaitFor, CallerCancelledWhileTheTimedOutInnerIsStillCancelling) {
    weft::run([] {
        weft::Event inner_cleaning;
        auto inner = weft::spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                inner_cleaning.set();
                weft::DeferCancellation defer;
                weft::sleep(5ms);  // a slow clean-up that will not be cut short
                throw;
            }
        });
        auto outer = weft::spawn([&] { weft::wait_for(inner, 1ms); });
        inner_cleaning.wait();  // wait_for timed out and is now waiting for the clean-up
        outer.cancel();
        EXPECT_THROW(outer.get(), weft::Cancelled);  // not TimeoutError: we were cancelled
        EXPECT_THROW(inner.get(), weft::Cancelled);
    });
}

TEST(AsCompleted, KeepsCompletionOrderAmongThoseThatFinishedTogether) {
    weft::run([] {
        std::vector<weft::Future<int>> fs(3);
        auto order = weft::as_completed(fs);
        // All three finish before the first look, in the order 2, 0, 1.
        fs[2].set_result(2);
        fs[0].set_result(0);
        fs[1].set_result(1);
        std::vector<int> got;
        for (auto& f : order) got.push_back(f.result());
        EXPECT_EQ(got, (std::vector<int>{2, 0, 1}));
    });
}

// asyncio.as_completed(aws, timeout=...): TimeoutError once the deadline passes with
// handles still pending; those already done came out first.
TEST(AsCompleted, TimeoutThrowsTimeoutErrorAfterTheOnesThatFinished) {
    weft::run([] {
        std::vector<weft::Task<int>> ts{weft::spawn([] { return weft::sleep(1ms, 1); }),
                                        weft::spawn([] { return weft::sleep(10s, 2); })};
        std::vector<int> got;
        auto start = weft::Clock::now();
        try {
            for (auto& t : weft::as_completed(ts, 30ms)) got.push_back(t.result());
            ADD_FAILURE() << "no TimeoutError";
        } catch (const weft::TimeoutError& e) {
            EXPECT_NE(std::string(e.what()).find("1 of 2"), std::string::npos) << e.what();
        }
        EXPECT_EQ(got, std::vector<int>{1});
        EXPECT_LT(weft::Clock::now() - start, 5s);
        EXPECT_FALSE(ts[1].done());  // as asyncio: the pending ones go on
        ts[1].cancel();
    });
}

// asyncio.wait with no awaitables is a ValueError.
TEST(Wait, EmptySetIsAnError) {
    weft::run([] {
        std::vector<weft::Task<int>> none;
        try {
            weft::wait(none);
            ADD_FAILURE() << "no error";
        } catch (const weft::Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument);
        }
    });
}

// The asyncio.timeout() object: when(), reschedule() (later, earlier, none), expired().
TEST(Timeout, RescheduleWhenAndExpired) {
    weft::run([] {
        // Pushed later: the body's 30 ms sleep outlives the first 10 ms deadline.
        weft::timeout(10ms, [](weft::Timeout& cm) {
            ASSERT_TRUE(cm.when().has_value());
            cm.reschedule(weft::Clock::now() + 10s);
            weft::sleep(30ms);
            EXPECT_FALSE(cm.expired());
        });
        // No deadline at first, then an earlier one than the body needs.
        bool expired = false;
        auto start = weft::Clock::now();
        EXPECT_THROW(weft::timeout(std::nullopt,
                                   [&](weft::Timeout& cm) {
                                       EXPECT_FALSE(cm.when().has_value());
                                       cm.reschedule(weft::Clock::now() + 10ms);
                                       try {
                                           weft::sleep(10s);
                                       } catch (const weft::Cancelled&) {
                                           expired = cm.expired();
                                           EXPECT_THROW(cm.reschedule(std::nullopt),
                                                        weft::InvalidStateError);
                                           throw;
                                       }
                                   }),
                     weft::TimeoutError);
        EXPECT_TRUE(expired);
        EXPECT_LT(weft::Clock::now() - start, 5s);
        // Taken away: nothing expires.
        weft::timeout(5ms, [](weft::Timeout& cm) {
            cm.reschedule(std::nullopt);
            weft::sleep(20ms);
            EXPECT_FALSE(cm.expired());
        });
    });
}
