// Submissions carved from their thread's chunk (submit_arena.hpp): every node runs once
// and is destroyed once, whoever frees it last, and every chunk goes back to the allocator
// once its thread has moved on and its nodes are gone (threads that exit, nodes too big to
// carve, a submission from a thread's last destructors, a handle that outlives the run).
// Under AddressSanitizer nodes come from malloc and no chunk is counted: LeakSanitizer
// checks the same things there.
#include "core/detail/submit_arena.hpp"

#include <weft/loop.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/detail/sanitizers.hpp"

namespace {
#ifdef WEFT_ASAN
constexpr bool kArena = false;
#else
constexpr bool kArena = true;
#endif

using weft::detail::submission_chunks;

// Runs the loop until `n` callbacks have counted themselves in `ran`, for at most 30 s. It
// blocks between submissions instead of spinning (a 10 ms timer bounds each wait): on a
// loaded two-core CI machine, spinning loops and producers starved each other to one round
// trip per scheduler slice.
void run_until(weft::Loop& loop, const int& ran, int n) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ran < n && std::chrono::steady_clock::now() < give_up) {
        weft::TimerHandle tick = loop.call_later(std::chrono::milliseconds(10), [] {});
        loop.run_once(true);
        tick.cancel();
    }
    EXPECT_EQ(ran, n);
}
}  // namespace

TEST(SubmitArena, ChunksGoBackOnceTheirThreadsExitAndTheirNodesRan) {
    const int64_t before = submission_chunks();
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    const int producers = 3, each = 5000;  // ~50 bytes a node: several chunks per thread
    auto token = std::make_shared<int>(0);  // every capture of it destroyed exactly once
    int ran = 0;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&] {
            for (int i = 0; i < each; ++i) handle.call_soon_threadsafe([&ran, token] { ++ran; });
        });
    for (auto& t : threads) t.join();
    if (kArena) {  // nothing ran yet
        EXPECT_GE(submission_chunks() - before, producers * 10);
    }
    EXPECT_EQ(token.use_count(), 1 + producers * each);
    run_until(loop, ran, producers * each);
    EXPECT_EQ(ran, producers * each);
    EXPECT_EQ(token.use_count(), 1);
    EXPECT_EQ(submission_chunks(), before);
}

TEST(SubmitArena, AProducerTheLoopKeepsUpWithHoldsAChunkOrTwo) {
    const int64_t start = submission_chunks();
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    const int n = 5000;  // ~20 chunks' worth of nodes
    int ran = 0;
    int64_t most = 0;
    std::atomic<int> finished{0};  // callbacks that ran: the producer sleeps on it
    std::atomic<bool> abandoned{false};
    std::thread producer([&] {
        const int64_t before = submission_chunks();
        for (int i = 0; i < n; ++i) {
            handle.call_soon_threadsafe([&] {
                ++ran;
                finished.fetch_add(1);
                finished.notify_one();
            });
            for (int seen = finished.load(); seen == i; seen = finished.load()) finished.wait(seen);
            if (abandoned.load()) return;
            most = std::max(most, submission_chunks() - before);
        }
    });
    run_until(loop, ran, n);
    if (ran != n) {  // failed: release the producer instead of joining it forever
        abandoned.store(true);
        finished.fetch_add(1);
        finished.notify_one();
    }
    producer.join();
    // One node in flight at a time: a chunk is carved again once its nodes are back (or,
    // when the last one is still on its way back, retired and freed by it).
    if (kArena) {
        EXPECT_LE(most, 2);
    }
    EXPECT_EQ(ran, n);
    EXPECT_EQ(submission_chunks(), start);
}

TEST(SubmitArena, BigClosuresGetAChunkOfTheirOwn) {
    const int64_t before = submission_chunks();
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    int ran = 0;
    std::thread producer([&] {
        for (int i = 0; i < 8; ++i) {
            std::array<unsigned char, 40000> big;  // past a whole chunk
            big.fill((unsigned char)(i + 1));
            handle.call_soon_threadsafe([&ran, big, i] {
                for (unsigned char c : big) ASSERT_EQ(c, (unsigned char)(i + 1));
                ++ran;
            });
        }
    });
    producer.join();
    if (kArena) {
        EXPECT_EQ(submission_chunks() - before, 8);
    }
    run_until(loop, ran, 8);
    EXPECT_EQ(submission_chunks(), before);
}

namespace {
// Submits from its destructor: constructed before the thread's chunk is, so destroyed
// after it, when the thread has no chunk any more.
struct SubmitsAtExit {
    weft::LoopHandle* handle = nullptr;
    int* ran = nullptr;
    ~SubmitsAtExit() {
        if (handle) handle->call_soon_threadsafe([r = ran] { ++*r; });
    }
};
thread_local SubmitsAtExit t_submits_at_exit;
}  // namespace

TEST(SubmitArena, SubmissionsFromAThreadsLastDestructorsStillRun) {
    const int64_t before = submission_chunks();
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    int ran = 0;
    std::thread producer([&] {
        t_submits_at_exit.handle = &handle;  // first: constructed before the chunk
        t_submits_at_exit.ran = &ran;
        handle.call_soon_threadsafe([&ran] { ++ran; });
    });
    producer.join();
    run_until(loop, ran, 2);
    EXPECT_EQ(ran, 2);
    EXPECT_EQ(submission_chunks(), before);
}

TEST(SubmitArena, AHandleThatOutlivesTheRunFreesTheLastNode) {
    const int64_t before = submission_chunks();
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    int ran = 0;
    std::atomic<bool> release{false};
    std::thread producer([&] {
        weft::ThreadsafeHandle kept = handle.call_soon_threadsafe([&ran] { ++ran; });
        while (!release.load()) std::this_thread::yield();
        EXPECT_FALSE(kept.cancelled());
    });  // exits holding the handle: the thread's chunk is retired first
    run_until(loop, ran, 1);
    release.store(true);
    producer.join();
    EXPECT_EQ(submission_chunks(), before);
}
