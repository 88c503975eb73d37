// The submission queue's protocol on its own: FIFO, one reactor wake-up per batch (not per
// item), bounded drains, and refusal after close.
#include "core/detail/inbox.hpp"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {
struct Counted : weft::detail::SubmitNode {
    int value;
    std::vector<int>* out;
    Counted(int v, std::vector<int>* o) : SubmitNode(std::source_location::current()), value(v), out(o) {}
    void invoke() override { out->push_back(value); }
};

size_t drain_all(weft::detail::Inbox& inbox, size_t max = SIZE_MAX) {
    size_t n = 0;
    inbox.drain(
        [&](weft::detail::SubmitNode* node) {
            node->invoke();
            delete node;
            ++n;
        },
        max);
    return n;
}
}  // namespace

TEST(Inbox, OneWakeupPerBatch) {
    weft::detail::Reactor reactor;
    weft::detail::Inbox inbox(nullptr, &reactor);
    std::vector<int> out;
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(inbox.submit(new Counted(i, &out)));
    EXPECT_EQ(inbox.wakeups(), 1u);  // the loop has not drained: one wake-up covers all
    EXPECT_EQ(drain_all(inbox), 1000u);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[size_t(i)], i);
    for (int i = 0; i < 10; ++i) inbox.submit(new Counted(i, &out));
    EXPECT_EQ(inbox.wakeups(), 2u);  // a new batch after the drain: one more
    drain_all(inbox);
    inbox.close();
}

TEST(Inbox, ManyProducersStillOneWakeupPerBatch) {
    weft::detail::Reactor reactor;
    weft::detail::Inbox inbox(nullptr, &reactor);
    std::vector<int> out;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 5000; ++i) inbox.submit(new Counted(i, &out));
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(inbox.wakeups(), 1u);
    EXPECT_EQ(drain_all(inbox), 20000u);
    inbox.close();
}

TEST(Inbox, DrainIsBoundedAndReportsBacklog) {
    weft::detail::Reactor reactor;
    weft::detail::Inbox inbox(nullptr, &reactor);
    std::vector<int> out;
    for (int i = 0; i < 10; ++i) inbox.submit(new Counted(i, &out));
    bool more = inbox.drain(
        [](weft::detail::SubmitNode* n) {
            n->invoke();
            delete n;
        },
        4);
    EXPECT_TRUE(more);
    EXPECT_EQ(out.size(), 4u);
    EXPECT_EQ(drain_all(inbox), 6u);
    inbox.close();
}

TEST(Inbox, RefusesAfterClose) {
    weft::detail::Reactor reactor;
    weft::detail::Inbox inbox(nullptr, &reactor);
    inbox.close();
    std::vector<int> out;
    auto* node = new Counted(1, &out);
    EXPECT_FALSE(inbox.submit(node));
    delete node;
    EXPECT_TRUE(inbox.closed());
}
