// The submission queue's protocol on its own: FIFO, one reactor wake-up per batch (not per
// item), bounded drains, and refusal after close.
#include "core/detail/inbox.hpp"

#include <atomic>
#include <chrono>
#include <memory>
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
    ASSERT_TRUE(inbox.prepare_to_block());  // empty: the loop may sleep now
    for (int i = 0; i < 10; ++i) inbox.submit(new Counted(i, &out));
    EXPECT_EQ(inbox.wakeups(), 2u);  // a new batch for a loop that may sleep: one more
    drain_all(inbox);
    inbox.close();
}

// While the loop is awake (between awake() and the next prepare_to_block) producers make
// no system call; what they submit is found by the loop's next look, at the latest by
// prepare_to_block, which then says not to block.
TEST(Inbox, NoWakeupWhileTheLoopIsAwake) {
    weft::detail::Reactor reactor;
    weft::detail::Inbox inbox(nullptr, &reactor);
    std::vector<int> out;
    EXPECT_FALSE(inbox.maybe_pending());
    ASSERT_TRUE(inbox.prepare_to_block());
    inbox.awake();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(inbox.submit(new Counted(i, &out)));
    EXPECT_EQ(inbox.wakeups(), 0u);
    EXPECT_TRUE(inbox.maybe_pending());
    EXPECT_FALSE(inbox.prepare_to_block());  // something is queued: do not sleep
    inbox.submit(new Counted(100, &out));
    EXPECT_EQ(inbox.wakeups(), 0u);  // prepare_to_block said no: the loop stays awake
    EXPECT_EQ(drain_all(inbox), 101u);
    EXPECT_FALSE(inbox.maybe_pending());
    EXPECT_TRUE(inbox.prepare_to_block());
    inbox.submit(new Counted(101, &out));
    EXPECT_EQ(inbox.wakeups(), 1u);
    drain_all(inbox);
    inbox.close();
}

// The handshake under contention: a loop that blocks only after prepare_to_block said yes
// is always woken for what was submitted, with producers racing it all the while.
TEST(Inbox, NoLostWakeupAgainstProducers) {
    weft::detail::Reactor reactor;
    weft::detail::Inbox inbox(nullptr, &reactor);
    std::vector<int> out;
    constexpr int kEach = 20000, kProducers = 2;
    std::vector<std::thread> threads;
    for (int t = 0; t < kProducers; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kEach; ++i) {
                inbox.submit(new Counted(i, &out));
                if (i % 64 == 0) std::this_thread::yield();
            }
        });
    size_t taken = 0;
    weft::detail::ReactorEvent events[4];
    while (taken < size_t(kEach) * kProducers) {
        // A lost wake-up would leave this poll asleep for its whole 10 s.
        int timeout = inbox.prepare_to_block() ? 10'000 : 0;
        auto start = std::chrono::steady_clock::now();
        reactor.poll(timeout, events, 4);
        ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
        inbox.awake();
        taken += drain_all(inbox);
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(taken, size_t(kEach) * kProducers);
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

// Sealing, on the queue alone: pushes after the seal fail, and the sealed drain hands out
// what came before: with the consumer's stub ahead of the last node, and as the sealed tail.
TEST(MpscQueue, SealRefusesLaterPushesAndDrainsEarlierOnes) {
    using weft::detail::MpscNode;
    using weft::detail::MpscQueue;
    MpscNode a, b, c, d;
    MpscQueue q;
    MpscNode* out = nullptr;
    ASSERT_TRUE(q.push(&a));
    ASSERT_TRUE(q.push(&b));
    ASSERT_EQ(q.pop(&out), MpscQueue::Pop::item);
    EXPECT_EQ(out, &a);
    ASSERT_EQ(q.pop(&out), MpscQueue::Pop::item);  // the last node: the stub goes behind it
    EXPECT_EQ(out, &b);
    ASSERT_TRUE(q.push(&c));  // after the stub
    q.seal();
    EXPECT_TRUE(q.sealed());
    EXPECT_FALSE(q.push(&d));
    EXPECT_EQ(d.next.load(), nullptr);
    ASSERT_EQ(q.pop(&out), MpscQueue::Pop::item);
    EXPECT_EQ(out, &c);
    EXPECT_EQ(q.pop(&out), MpscQueue::Pop::empty);
    EXPECT_EQ(q.pop(&out), MpscQueue::Pop::empty);

    MpscQueue empty_when_sealed;  // the stub is the tail: nothing to hand out
    ASSERT_TRUE(empty_when_sealed.push(&a));
    ASSERT_EQ(empty_when_sealed.pop(&out), MpscQueue::Pop::item);
    empty_when_sealed.seal();
    EXPECT_EQ(empty_when_sealed.pop(&out), MpscQueue::Pop::empty);
    EXPECT_FALSE(empty_when_sealed.push(&b));
}

// The race close() relies on: producers push while the consumer takes and then seals.
// Every node is either refused (its producer keeps it) or handed out once, never both and
// never neither; a producer refused once is refused from then on.
TEST(MpscQueue, SealRacingProducersLosesNothing) {
    using weft::detail::MpscNode;
    using weft::detail::MpscQueue;
    constexpr int kProducers = 3, kEach = 50000;
    for (int round = 0; round < 4; ++round) {
        MpscQueue q;
        std::vector<std::unique_ptr<MpscNode[]>> nodes;
        for (int t = 0; t < kProducers; ++t) nodes.push_back(std::make_unique<MpscNode[]>(kEach));
        std::vector<std::vector<char>> accepted(kProducers, std::vector<char>(kEach, 0));
        std::atomic<int> started{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < kProducers; ++t)
            threads.emplace_back([&, t] {
                started.fetch_add(1);
                bool refused = false;
                for (int i = 0; i < kEach; ++i) {
                    bool ok = q.push(&nodes[size_t(t)][size_t(i)]);
                    if (refused) {
                        EXPECT_FALSE(ok) << "accepted after a refusal";
                    }
                    refused = !ok;
                    accepted[size_t(t)][size_t(i)] = ok;
                    if (refused && i % 64 == 0) break;  // seen: a few more tries are enough
                    if (i % 256 == 0) std::this_thread::yield();
                }
            });
        while (started.load() < kProducers) std::this_thread::yield();
        std::vector<const MpscNode*> taken;
        auto take = [&](bool until_empty) {
            for (;;) {
                MpscNode* out;
                switch (q.pop(&out)) {
                    case MpscQueue::Pop::item: taken.push_back(out); break;
                    case MpscQueue::Pop::busy: std::this_thread::yield(); break;
                    case MpscQueue::Pop::empty:
                        if (until_empty) return;
                        std::this_thread::yield();
                        break;
                }
                if (!until_empty && taken.size() >= size_t(5000) * size_t(1 + round)) return;
            }
        };
        take(false);  // some, with producers still pushing
        q.seal();
        take(true);   // the rest of what was accepted
        for (auto& t : threads) t.join();
        std::vector<int> seen(size_t(kProducers) * kEach, 0);
        for (const MpscNode* n : taken)
            for (int t = 0; t < kProducers; ++t) {
                const MpscNode* first = nodes[size_t(t)].get();
                if (n >= first && n < first + kEach) ++seen[size_t(t) * kEach + size_t(n - first)];
            }
        size_t accepted_count = 0;
        for (int t = 0; t < kProducers; ++t)
            for (int i = 0; i < kEach; ++i) {
                const int s = seen[size_t(t) * kEach + size_t(i)];
                accepted_count += accepted[size_t(t)][size_t(i)];
                ASSERT_EQ(s, accepted[size_t(t)][size_t(i)] ? 1 : 0) << "producer " << t << " node " << i;
            }
        EXPECT_EQ(taken.size(), accepted_count);
        MpscNode late;
        EXPECT_FALSE(q.push(&late));
    }
}
