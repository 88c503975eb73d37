// Event, Lock, Semaphore, BoundedSemaphore, Condition, Barrier, Queue: FIFO wake-ups and
// consistency when waiters are cancelled mid-wait.
#include <weft/weft.hpp>

#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Event, SetWakesAllWaiters) {
    weft::run([] {
        weft::Event ev;
        int woke = 0;
        std::vector<weft::Task<void>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(weft::spawn([&] {
            ev.wait();
            ++woke;
        }));
        weft::sleep(1ms);
        EXPECT_EQ(woke, 0);
        ev.set();
        weft::gather(ts);
        EXPECT_EQ(woke, 3);
        EXPECT_TRUE(ev.is_set());
        ev.wait();  // already set: returns at once
        ev.clear();
        EXPECT_FALSE(ev.is_set());
    });
}

TEST(Lock, MutualExclusionAndFifo) {
    weft::run([] {
        weft::Lock lock;
        std::vector<int> order;
        int inside = 0;
        std::vector<weft::Task<void>> ts;
        for (int i = 0; i < 5; ++i)
            ts.push_back(weft::spawn([&, i] {
                std::lock_guard guard(lock);
                EXPECT_EQ(inside++, 0);
                order.push_back(i);
                weft::sleep(1ms);
                --inside;
            }));
        weft::gather(ts);
        EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
        EXPECT_FALSE(lock.locked());
        EXPECT_THROW(lock.release(), weft::InvalidStateError);
    });
}

TEST(Lock, CancelledWaiterLeavesItConsistent) {
    weft::run([] {
        weft::Lock lock;
        lock.acquire();
        auto waiter = weft::spawn([&] { std::lock_guard g(lock); });
        auto next = weft::spawn([&] {
            std::lock_guard g(lock);
            return 1;
        });
        weft::sleep(1ms);
        lock.release();   // handed to `waiter`...
        waiter.cancel();  // ...which is cancelled before it runs: the lock passes on
        EXPECT_THROW(waiter.get(), weft::Cancelled);
        EXPECT_EQ(next.get(), 1);
        EXPECT_FALSE(lock.locked());
    });
}

TEST(Semaphore, LimitsConcurrency) {
    weft::run([] {
        weft::Semaphore sem(2);
        int inside = 0, peak = 0;
        std::vector<weft::Task<void>> ts;
        for (int i = 0; i < 6; ++i)
            ts.push_back(weft::spawn([&] {
                std::lock_guard g(sem);
                peak = std::max(peak, ++inside);
                weft::sleep(1ms);
                --inside;
            }));
        weft::gather(ts);
        EXPECT_EQ(peak, 2);
        EXPECT_EQ(sem.value(), 2u);
    });
}

TEST(Semaphore, BoundedRejectsExtraRelease) {
    weft::run([] {
        weft::BoundedSemaphore sem(1);
        sem.acquire();
        sem.release();
        EXPECT_THROW(sem.release(), weft::Error);
    });
}

TEST(Condition, NotifyWakesWaitersWithTheLockHeld) {
    weft::run([] {
        weft::Condition cond;
        std::vector<int> items;
        int got = 0;
        auto consumer = weft::spawn([&] {
            std::lock_guard g(cond);
            cond.wait_for([&] { return !items.empty(); });
            EXPECT_TRUE(cond.locked());
            got = items.back();
        });
        weft::sleep(1ms);
        {
            std::lock_guard g(cond);
            items.push_back(5);
            cond.notify();
        }
        consumer.get();
        EXPECT_EQ(got, 5);
        EXPECT_THROW(cond.notify(), weft::InvalidStateError);
    });
}

TEST(Condition, CancelledWaiterReacquiresTheLock) {
    weft::run([] {
        weft::Condition cond;
        bool held_after_cancel = false;
        auto t = weft::spawn([&] {
            std::unique_lock g(cond);
            try {
                cond.wait();
            } catch (const weft::Cancelled&) {
                held_after_cancel = cond.locked();
                throw;
            }
        });
        weft::sleep(1ms);
        t.cancel();
        EXPECT_THROW(t.get(), weft::Cancelled);
        EXPECT_TRUE(held_after_cancel);
        EXPECT_FALSE(cond.locked());
    });
}

TEST(Barrier, ReleasesWhenFullWithDistinctIndices) {
    weft::run([] {
        weft::Barrier barrier(3);
        std::vector<weft::Task<size_t>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(weft::spawn([&] { return barrier.wait(); }));
        auto idx = weft::gather(ts);
        std::sort(idx.begin(), idx.end());
        EXPECT_EQ(idx, (std::vector<size_t>{0, 1, 2}));
        EXPECT_EQ(barrier.n_waiting(), 0u);
    });
}

TEST(Queue, BoundedPutGetInOrder) {
    weft::run([] {
        weft::Queue<int> q(2);
        auto producer = weft::spawn([&] {
            for (int i = 0; i < 10; ++i) q.put(i);  // suspends while full
        });
        std::vector<int> got;
        for (int i = 0; i < 10; ++i) {
            got.push_back(q.get());
            EXPECT_LE(q.qsize(), 2u);
        }
        producer.get();
        EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    });
}

TEST(Queue, NowaitErrors) {
    weft::run([] {
        weft::Queue<std::string> q(1);
        EXPECT_THROW(q.get_nowait(), weft::QueueEmpty);
        q.put_nowait("a");
        EXPECT_TRUE(q.full());
        EXPECT_THROW(q.put_nowait("b"), weft::QueueFull);
        EXPECT_EQ(q.get_nowait(), "a");
    });
}

TEST(Queue, TaskDoneAndJoin) {
    weft::run([] {
        weft::Queue<int> q;
        int processed = 0;
        for (int i = 0; i < 5; ++i) q.put_nowait(i);
        auto worker = weft::spawn([&] {
            for (;;) {
                q.get();
                weft::sleep(0ms);
                ++processed;
                q.task_done();
            }
        });
        q.join();
        EXPECT_EQ(processed, 5);
        worker.cancel();
        EXPECT_THROW(worker.get(), weft::Cancelled);
        EXPECT_THROW(q.task_done(), weft::InvalidStateError);
    });
}

TEST(Queue, CancelledGetterDoesNotSwallowAnItem) {
    weft::run([] {
        weft::Queue<int> q;
        auto first = weft::spawn([&] { return q.get(); });
        auto second = weft::spawn([&] { return q.get(); });
        weft::sleep(1ms);
        q.put_nowait(7);  // notifies `first`...
        first.cancel();   // ...which is cancelled before it runs: `second` gets the item
        EXPECT_THROW(first.get(), weft::Cancelled);
        EXPECT_EQ(second.get(), 7);
    });
}

TEST(PriorityQueue, SmallestFirst) {
    weft::run([] {
        weft::PriorityQueue<int> pq;
        for (int v : {5, 1, 4, 2, 3}) pq.put_nowait(v);
        std::vector<int> out;
        while (!pq.empty()) out.push_back(pq.get());
        EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4, 5}));
        weft::LifoQueue<int> lifo;
        lifo.put_nowait(1);
        lifo.put_nowait(2);
        EXPECT_EQ(lifo.get_nowait(), 2);
    });
}
