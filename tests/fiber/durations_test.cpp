// Durations near the maximum saturate to "never" wherever they become deadlines: sleep,
// call_later, timeout scopes, wait_for, wait, as_completed, ThreadFuture waits, connect.
// Before, `now + d` overflowed: a wrapped deadline fired at once or froze every other timer.
#include <weft/weft.hpp>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::nanoseconds;

TEST(Durations, DeadlineAfterSaturates) {
    weft::TimePoint now = weft::Clock::now();
    EXPECT_EQ(weft::deadline_after(hours::max(), now), weft::TimePoint::max());
    EXPECT_EQ(weft::deadline_after(nanoseconds::max(), now), weft::TimePoint::max());
    EXPECT_EQ(weft::deadline_after(std::chrono::duration<double>(1e300), now),
              weft::TimePoint::max());
    EXPECT_EQ(weft::deadline_after(-5s, now), now);
    EXPECT_EQ(weft::deadline_after(hours::min(), now), now);
    EXPECT_EQ(weft::deadline_after(3ms, now), now + 3ms);
    EXPECT_EQ(weft::saturating_duration(hours::max()), weft::Duration::max());
    EXPECT_EQ(weft::saturating_duration(hours::min()), weft::Duration::min());
    EXPECT_EQ(weft::saturating_duration(std::chrono::microseconds(7)), 7us);
}

// The reproduction: a fiber sleeping "for ever" must not stop other timers.
TEST(Durations, HugeSleepsDoNotFreezeOtherTimers) {
    weft::run([] {
        auto a = weft::spawn([] { weft::sleep(nanoseconds::max()); });
        auto b = weft::spawn([] { weft::sleep(hours::max()); });  // threw "negative delay"
        auto start = weft::Clock::now();
        weft::sleep(5ms);
        EXPECT_LT(weft::Clock::now() - start, 2s);
        EXPECT_FALSE(a.done());
        EXPECT_FALSE(b.done());
        a.cancel();
        b.cancel();
        EXPECT_THROW(a.get(), weft::Cancelled);
        EXPECT_THROW(b.get(), weft::Cancelled);
    });
}

TEST(Durations, HugeCallLaterNeverFiresAndOthersDo) {
    weft::Loop loop;
    bool huge_fired = false;
    auto huge = loop.call_later(nanoseconds::max(), [&] { huge_fired = true; });
    auto huger = loop.call_later(hours::max(), [&] { huge_fired = true; });
    loop.call_later(2ms, [&] { loop.stop(); });
    auto start = loop.time();
    loop.run_forever();
    EXPECT_LT(loop.time() - start, 2s);
    EXPECT_FALSE(huge_fired);
    EXPECT_EQ(huge.when(), weft::TimePoint::max());
    huge.cancel();
    huger.cancel();
}

TEST(Durations, HugeTimeoutsDoNotExpire) {
    weft::run([] {
        EXPECT_EQ(weft::timeout(nanoseconds::max(), [] { return weft::sleep(2ms, 1); }), 1);
        EXPECT_EQ(weft::timeout(hours::max(), [] { return weft::sleep(2ms, 2); }), 2);
        // wait_for timed out at once with nanoseconds::max().
        EXPECT_EQ(weft::wait_for([] { return weft::sleep(2ms, 3); }, nanoseconds::max()), 3);
        EXPECT_EQ(weft::wait_for([] { return weft::sleep(2ms, 4); }, hours::max()), 4);
        // An Event wait under such a timeout, set by another fiber.
        weft::Event ev;
        weft::spawn([&] {
            weft::sleep(2ms);
            ev.set();
        });
        weft::timeout(nanoseconds::max(), [&] { ev.wait(); });
        std::vector<weft::Task<int>> ts{weft::spawn([] { return weft::sleep(1ms, 5); })};
        EXPECT_EQ(weft::wait(ts, weft::ReturnWhen::all_completed, nanoseconds::max()).done.size(),
                  1u);
        for (auto& t : weft::as_completed(ts, hours::max())) EXPECT_EQ(t.result(), 5);
    });
}

TEST(Durations, ThreadFutureWaitWithAHugeTimeout) {
    weft::ThreadFuture<int> f;
    std::thread setter([f]() mutable {
        std::this_thread::sleep_for(2ms);
        f.set_result(6);
    });
    EXPECT_EQ(f.result(weft::Duration::max()), 6);
    setter.join();
}

TEST(Durations, ConnectWithAHugeTimeout) {
    weft::run([] {
        auto server = weft::start_server([](weft::Stream& s) { s.write("hi"); }, "127.0.0.1", 0);
        weft::Stream c = weft::open_connection("127.0.0.1", server->port(),
                                               {.timeout = weft::Duration::max()});
        EXPECT_EQ(c.read_exactly(2), "hi");
    });
}
