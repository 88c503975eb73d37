// Cancellation cannot be swallowed by `catch (const std::exception&)`: at every kind of
// suspension point a user's catch-all-errors clause lets Cancelled through, so cancel(),
// wait_for, timeout scopes and TaskGroup keep working around code written that way.
#include <weft/weft.hpp>

#include <functional>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

static_assert(!std::is_base_of_v<std::exception, weft::Cancelled>,
              "Cancelled must not be a std::exception (asyncio: CancelledError is a BaseException)");
static_assert(std::is_base_of_v<weft::BaseException, weft::Cancelled>);
static_assert(!std::is_base_of_v<std::exception, weft::KeyboardInterrupt>);
static_assert(std::is_base_of_v<std::exception, weft::TimeoutError>);
static_assert(std::is_base_of_v<std::exception, weft::InvalidStateError>);
static_assert(std::is_base_of_v<std::exception, weft::SystemError>);

namespace {

struct Outcome {
    bool swallowed = false;  // the user's catch (const std::exception&) ran
    bool went_on = false;    // code after the try block ran
};

// A task whose body suspends in `op` inside `try { } catch (const std::exception&) { }`;
// cancelled once it is suspended. The task must end cancelled, its catch never run.
void expect_cancel_goes_through(const std::function<void()>& op) {
    weft::run([&] {
        Outcome out;
        auto task = weft::spawn([&] {
            try {
                op();
            } catch (const std::exception&) {
                out.swallowed = true;
            }
            out.went_on = true;
        });
        weft::sleep(5ms);  // the task is suspended in op by now
        ASSERT_FALSE(task.done());
        task.cancel("test");
        try {
            task.get();
            ADD_FAILURE() << "the task finished normally";
        } catch (const weft::Cancelled& c) {
            EXPECT_EQ(c.message(), "test");
        }
        EXPECT_TRUE(task.cancelled());
        EXPECT_FALSE(out.swallowed);
        EXPECT_FALSE(out.went_on);
    });
}

}  // namespace

TEST(Cancellation, IsNotAStdExceptionAndSaysWhatItIs) {
    weft::Cancelled c("why");
    EXPECT_EQ(c.message(), "why");
    EXPECT_STREQ(c.what(), "cancelled: why");
    EXPECT_STREQ(weft::Cancelled().what(), "cancelled");
    EXPECT_EQ(c.code(), weft::errc::cancelled);
    EXPECT_EQ(weft::describe_exception(std::make_exception_ptr(c)), "cancelled: why");
}

TEST(Cancellation, PassesCatchStdExceptionInSleep) {
    expect_cancel_goes_through([] { weft::sleep(10s); });
}

TEST(Cancellation, PassesCatchStdExceptionInFutureGet) {
    expect_cancel_goes_through([] {
        weft::Future<int> f;
        f.get();
    });
}

TEST(Cancellation, PassesCatchStdExceptionInLockAcquire) {
    expect_cancel_goes_through([] {
        weft::Lock lock;
        lock.acquire();
        lock.acquire();  // not reentrant: waits for ever
    });
}

TEST(Cancellation, PassesCatchStdExceptionInQueueGet) {
    expect_cancel_goes_through([] {
        weft::Queue<int> q;
        q.get();
    });
}

TEST(Cancellation, PassesCatchStdExceptionInStreamRead) {
    expect_cancel_goes_through([] {
        auto pair = weft::stream_pair();
        pair.first.read();  // nobody writes
    });
}

TEST(Cancellation, PassesCatchStdExceptionInGather) {
    expect_cancel_goes_through([] {
        weft::gather([] { weft::sleep(10s); }, [] { weft::sleep(10s); });
    });
}

TEST(Cancellation, PassesCatchStdExceptionInWaitFor) {
    expect_cancel_goes_through([] { weft::wait_for([] { weft::sleep(10s); }, 10s); });
}

TEST(Cancellation, PassesCatchStdExceptionInRunInExecutor) {
    expect_cancel_goes_through([] {
        weft::run_in_executor(nullptr, [] { std::this_thread::sleep_for(50ms); }).get();
    });
}

// The issue's own reproduction: the body swallows "every error" around its sleep, yet
// wait_for still times out — the body never returns its value.
TEST(Cancellation, WaitForTimesOutAroundABodyThatCatchesStdException) {
    weft::run([] {
        bool body_returned = false;
        auto start = weft::Clock::now();
        EXPECT_THROW(weft::wait_for(
                         [&] {
                             try {
                                 weft::sleep(2s);
                             } catch (const std::exception&) {
                             }
                             body_returned = true;
                             return 7;
                         },
                         50ms),
                     weft::TimeoutError);
        EXPECT_FALSE(body_returned);
        EXPECT_LT(weft::Clock::now() - start, 1s);
    });
}

TEST(Cancellation, TimeoutScopeAroundABodyThatCatchesStdException) {
    weft::run([] {
        bool body_returned = false;
        EXPECT_THROW(weft::timeout(20ms,
                                   [&] {
                                       try {
                                           weft::sleep(2s);
                                       } catch (const std::exception&) {
                                       }
                                       body_returned = true;
                                   }),
                     weft::TimeoutError);
        EXPECT_FALSE(body_returned);
    });
}

// catch (...) is asyncio's `except BaseException:` — it does see the cancellation; a
// body that rethrows after cleaning up still ends cancelled.
TEST(Cancellation, CatchAllSeesItAndRethrowKeepsTheTaskCancelled) {
    weft::run([] {
        bool cleaned = false;
        auto task = weft::spawn([&] {
            try {
                weft::sleep(10s);
            } catch (...) {
                cleaned = true;
                throw;
            }
        });
        weft::sleep(1ms);
        task.cancel();
        EXPECT_THROW(task.get(), weft::Cancelled);
        EXPECT_TRUE(cleaned);
        EXPECT_TRUE(task.cancelled());
    });
}
