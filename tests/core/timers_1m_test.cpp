// A million pending timers: scheduling, cancelling half and firing the rest stays
// correct (order, counts) and bounded. Speed is measured by BM_CallLaterCancel, not here.
#include <weft/loop.hpp>

#include <vector>

#include <gtest/gtest.h>

TEST(Timers, OneMillionScheduleCancelHalfFireRest) {
    constexpr int kTimers = 1'000'000;
    weft::Loop loop;
    std::vector<weft::TimerHandle> handles;
    handles.reserve(kTimers);
    auto base = loop.time();
    int fired = 0;
    bool in_order = true;
    weft::TimePoint last{};
    for (int i = 0; i < kTimers; ++i) {
        // Deadlines spread over 1 ms, scattered so the heap really reorders them.
        auto when = base + std::chrono::nanoseconds((int64_t(i) * 7919) % 1'000'000);
        handles.push_back(loop.call_at(when, [&, when] {
            if (when < last) in_order = false;
            last = when;
            ++fired;
        }));
    }
    for (int i = 0; i < kTimers; i += 2) handles[i].cancel();
    handles.clear();
    while (fired < kTimers / 2) loop.run_once(false);
    EXPECT_EQ(fired, kTimers / 2);
    EXPECT_TRUE(in_order);
}
