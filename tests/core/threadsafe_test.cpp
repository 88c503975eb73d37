// call_soon_threadsafe from many threads: nothing lost, nothing duplicated, per-producer
// FIFO; a handle that outlives its loop gets a clear error.
#include <weft/error.hpp>
#include <weft/loop.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

class Threadsafe : public testing::TestWithParam<int> {};

TEST_P(Threadsafe, ManyProducersNothingLostNothingDuplicated) {
    const int producers = GetParam();
    const int per_producer = 20000;
    weft::Loop loop;
    std::vector<std::vector<int>> seen(producers);
    int total = 0;
    weft::LoopHandle handle = loop.handle();
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < per_producer; ++i)
                handle.call_soon_threadsafe([&, p, i] {
                    seen[p].push_back(i);
                    if (++total == producers * per_producer) loop.stop();
                });
        });
    go = true;
    loop.call_later(std::chrono::seconds(30), [&] { loop.stop(); });  // backstop: fail, not hang
    loop.run_forever();
    for (auto& t : threads) t.join();
    ASSERT_EQ(total, producers * per_producer);
    for (int p = 0; p < producers; ++p) {
        ASSERT_EQ(seen[p].size(), size_t(per_producer));
        for (int i = 0; i < per_producer; ++i) ASSERT_EQ(seen[p][i], i) << "producer " << p;
    }
}

INSTANTIATE_TEST_SUITE_P(ProducerCounts, Threadsafe, testing::Values(1, 2, 4, 8));

TEST(ThreadsafeSubmit, WakesABlockedLoop) {
    weft::Loop loop;
    weft::LoopHandle handle = loop.handle();
    std::thread producer([handle]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        handle.stop();
    });
    auto start = loop.time();
    loop.run_forever();  // nothing scheduled: blocks in poll until the wake-up
    producer.join();
    EXPECT_LT(loop.time() - start, std::chrono::seconds(5));
}

TEST(ThreadsafeSubmit, HandleOutlivingItsLoopThrows) {
    weft::LoopHandle handle;
    {
        weft::Loop loop;
        handle = loop.handle();
        EXPECT_FALSE(handle.is_closed());
    }
    EXPECT_TRUE(handle.is_closed());
    EXPECT_THROW(handle.call_soon_threadsafe([] {}), weft::InvalidStateError);
    EXPECT_THROW(handle.stop(), weft::InvalidStateError);
    weft::LoopHandle empty;
    EXPECT_THROW(empty.call_soon_threadsafe([] {}), weft::InvalidStateError);
}

TEST(ThreadsafeSubmit, ProducersRacingCloseEitherRunOrThrow) {
    // Every submission either ran or threw: none vanishes while the loop closes.
    for (int round = 0; round < 20; ++round) {
        std::atomic<int> accepted{0}, refused{0};
        int ran = 0, reported = 0;
        {
            weft::Loop loop;
            loop.set_exception_handler([&](weft::Loop&, const weft::ExceptionContext& c) {
                reported += std::stoi(c.message.substr(c.message.find("with ") + 5));
            });
            weft::LoopHandle handle = loop.handle();
            std::atomic<int> started{0};
            std::vector<std::thread> threads;
            for (int p = 0; p < 2; ++p)
                threads.emplace_back([&] {
                    ++started;
                    for (int i = 0; i < 2000; ++i) {
                        try {
                            handle.call_soon_threadsafe([&] { ++ran; });
                            ++accepted;
                        } catch (const weft::InvalidStateError&) {
                            ++refused;
                        }
                    }
                });
            while (started < 2) std::this_thread::yield();  // close races the producers
            for (int i = 0; i < 3; ++i) loop.run_once(false);
            loop.close();
            for (auto& t : threads) t.join();
        }
        EXPECT_EQ(accepted + refused, 4000);
        EXPECT_EQ(ran + reported, accepted.load()) << "round " << round;
    }
}

// asyncio: call_soon_threadsafe returns a Handle. Cancelled from the submitting thread
// before the loop gets to it, the callback never runs; cancelling after it ran, or keeping
// the handle past the loop's close, is harmless (ASan would see a double free or a leak).
TEST(ThreadsafeSubmit, HandleCancelsACallbackNotYetRun) {
    std::vector<int> ran;
    weft::ThreadsafeHandle kept;
    {
        weft::Loop loop;
        weft::LoopHandle handle = loop.handle();
        std::thread([&] {
            auto a = handle.call_soon_threadsafe([&] { ran.push_back(1); });
            auto b = handle.call_soon_threadsafe([&] { ran.push_back(2); });
            kept = handle.call_soon_threadsafe([&] { ran.push_back(3); });
            EXPECT_FALSE(b.cancelled());
            b.cancel();
            EXPECT_TRUE(b.cancelled());
            handle.call_soon_threadsafe([&] { loop.stop(); });  // handle dropped at once
        }).join();
        loop.run_forever();
        kept.cancel();  // it ran already: nothing happens
        // A cancelled submission still queued at close is not reported as lost.
        testing::internal::CaptureStderr();
        loop.call_soon_threadsafe([&] { ran.push_back(4); }).cancel();
        loop.close();
        EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    }
    EXPECT_EQ(ran, (std::vector<int>{1, 3}));
    EXPECT_TRUE(kept.cancelled());
}
