// TimerHeap: deadline order, FIFO among equal deadlines, removal from any position.
#include "core/detail/timer_heap.hpp"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

using weft::detail::TimerHeap;
using weft::detail::TimerNode;
using std::chrono::milliseconds;

namespace {
std::chrono::steady_clock::time_point at(int ms) {
    return std::chrono::steady_clock::time_point(milliseconds(ms));
}
}  // namespace

TEST(TimerHeap, PopsByDeadlineThenFifo) {
    std::vector<TimerNode> nodes(6);
    int deadlines[] = {5, 1, 5, 3, 1, 5};
    TimerHeap heap;
    for (int i = 0; i < 6; ++i) {
        nodes[i].deadline = at(deadlines[i]);
        heap.push(&nodes[i]);
    }
    std::vector<TimerNode*> order;
    while (!heap.empty()) order.push_back(heap.pop());
    std::vector<TimerNode*> expected = {&nodes[1], &nodes[4], &nodes[3],
                                        &nodes[0], &nodes[2], &nodes[5]};
    EXPECT_EQ(order, expected);
    for (auto& n : nodes) EXPECT_FALSE(n.queued());
}

TEST(TimerHeap, RemoveFromAnyPositionKeepsOrder) {
    std::mt19937 rng(42);
    std::vector<TimerNode> nodes(1000);
    TimerHeap heap;
    for (auto& n : nodes) {
        n.deadline = at(int(rng() % 100));
        heap.push(&n);
    }
    for (size_t i = 0; i < nodes.size(); i += 3) heap.remove(&nodes[i]);
    EXPECT_EQ(heap.size(), nodes.size() - (nodes.size() + 2) / 3);
    TimerNode* prev = nullptr;
    size_t popped = 0;
    while (!heap.empty()) {
        TimerNode* n = heap.pop();
        EXPECT_NE((n - nodes.data()) % 3, 0);
        if (prev) {
            EXPECT_TRUE(prev->deadline < n->deadline ||
                        (prev->deadline == n->deadline && prev->seq < n->seq));
        }
        prev = n;
        ++popped;
    }
    EXPECT_EQ(popped, nodes.size() - (nodes.size() + 2) / 3);
}

TEST(TimerHeap, RemoveLastAndOnlyElement) {
    TimerNode a, b;
    a.deadline = at(1);
    b.deadline = at(2);
    TimerHeap heap;
    heap.push(&a);
    heap.remove(&a);
    EXPECT_TRUE(heap.empty());
    heap.push(&a);
    heap.push(&b);
    heap.remove(&b);
    EXPECT_EQ(heap.top(), &a);
    EXPECT_FALSE(b.queued());
}
