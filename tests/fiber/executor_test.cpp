// wrap_future, run_in_executor and run_coroutine_threadsafe (the seed's background-loop
// example), with cancellation across the thread boundary; to_thread, the default pool
// (its size, set_default_executor) and which bridges carry the caller's Context.
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
// From a plain thread: polls pred() every millisecond for up to 10 s; returns pred().
template <class Pred>
bool eventually(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return pred();
}
}  // namespace

TEST(Executor, RunInExecutorAwaitsABlockingCall) {
    int r = weft::run([] {
        auto f = weft::run_in_executor(nullptr, [](int x) {
            std::this_thread::sleep_for(5ms);  // blocking: fine on a worker
            return x * 2;
        }, 21);
        return f.get();
    });
    EXPECT_EQ(r, 42);
}

TEST(Executor, GatherOfExecutorJobsAndExceptions) {
    weft::run([] {
        weft::ThreadPool pool(2);
        auto a = weft::run_in_executor(&pool, [] { return 1; });
        auto b = weft::run_in_executor(&pool, [] { return 2; });
        auto [x, y] = weft::gather(a, b);
        EXPECT_EQ(x + y, 3);
        auto bad = weft::run_in_executor(&pool, []() -> int { throw std::runtime_error("in job"); });
        EXPECT_THROW(bad.get(), std::runtime_error);
    });
}

TEST(Executor, CancellingTheAwaiterCancelsAJobNotStarted) {
    weft::run([] {
        weft::ThreadPool pool(1);
        std::atomic<bool> release{false}, queued_ran{false};
        auto blocker = weft::run_in_executor(&pool, [&] {
            while (!release.load()) std::this_thread::sleep_for(100us);
        });
        auto waiter = weft::spawn([&] {
            weft::run_in_executor(&pool, [&] { queued_ran = true; }).get();
        });
        weft::sleep(1ms);
        waiter.cancel();
        EXPECT_THROW(waiter.get(), weft::Cancelled);
        release = true;
        blocker.get();
        pool.shutdown(true);
        EXPECT_FALSE(queued_ran.load());
    });
}

TEST(Executor, WrapFuture) {
    weft::run([] {
        weft::ThreadFuture<std::string> tf;
        std::thread producer([tf]() mutable {
            std::this_thread::sleep_for(2ms);
            tf.set_result("from a thread");
        });
        EXPECT_EQ(weft::wrap_future(tf).get(), "from a thread");
        producer.join();
    });
}

TEST(Executor, SeedExampleBackgroundLoopThread) {
    // The seed: a loop on a background thread, a coroutine submitted from the main
    // thread with run_coroutine_threadsafe, result(timeout=2), and a done callback.
    weft::LoopThread background;
    background.start();
    std::atomic<bool> callback_ran{false};
    auto future = weft::run_coroutine_threadsafe(background, [](int x) {
        weft::sleep(5ms);
        return x + 1;
    }, 41);
    future.add_done_callback([&](weft::ThreadFuture<int>& f) { callback_ran = f.result() == 42; });
    // The bounds only turn a hang into a failure: generous, since a loaded CI machine can
    // keep the loop's thread off a core for a second or two.
    EXPECT_EQ(future.result(30s), 42);
    EXPECT_TRUE(eventually([&] { return callback_ran.load(); }));
    background.stop();
    background.join();
}

TEST(Executor, CancellingTheThreadFutureCancelsTheTask) {
    weft::LoopThread background;
    background.start();
    std::atomic<bool> started{false}, cleaned{false};
    auto future = weft::run_coroutine_threadsafe(background, [&] {
        started = true;
        try {
            weft::sleep(1h);
        } catch (const weft::Cancelled&) {
            cleaned = true;
            throw;
        }
    });
    // Until the task runs: cancelled before it starts, its body would never run (and
    // `cleaned` never be set). A fixed 5 ms sleep is not enough on a loaded CI machine.
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    EXPECT_TRUE(future.cancel());
    EXPECT_TRUE(eventually([&] { return cleaned.load(); }));
    EXPECT_THROW(future.result(), weft::Cancelled);
    background.stop();
    background.join();
}

TEST(Executor, ExceptionCrossesBackToTheCaller) {
    weft::LoopThread background;
    background.start();
    auto future = weft::run_coroutine_threadsafe(background, []() -> int {
        throw std::runtime_error("failed on the loop");
    });
    EXPECT_THROW(future.result(30s), std::runtime_error);  // generous: see above
}

namespace {
weft::ContextVar<std::string> g_user("user", "nobody");

struct MyJobError : std::exception {
    explicit MyJobError(int c) : code(c) {}
    const char* what() const noexcept override { return "my job error"; }
    int code;
};

int twice(int x) { return 2 * x; }
}  // namespace

TEST(Executor, ThreadPoolJobExceptionsKeepTheirType) {
    weft::run([] {
        weft::ThreadPool pool(1);
        try {
            weft::run_in_executor(&pool, [] { throw MyJobError(7); }).get();
            FAIL() << "no exception";
        } catch (const MyJobError& e) {
            EXPECT_EQ(e.code, 7);  // the very object's type, not a copy as another type
        }
        EXPECT_THROW(weft::run_in_executor(&pool, [] { throw std::out_of_range("x"); }).get(),
                     std::out_of_range);
    });
}

TEST(Executor, RunInExecutorWithNullptrAndAFunctionPointerUsesTheDefaultPool) {
    // nullptr picks the default thread pool, not the ProcessPool overload.
    EXPECT_EQ(weft::run([] { return weft::run_in_executor(nullptr, &twice, 21).get(); }), 42);
}

TEST(Executor, ToThreadReturnsTheResultOrRethrows) {
    weft::run([] {
        auto loop_thread = std::this_thread::get_id();
        auto [value, worker] = weft::to_thread([](int x) {
            std::this_thread::sleep_for(1ms);  // blocking: fine on a worker
            return std::pair(x + 1, std::this_thread::get_id());
        }, 41);
        EXPECT_EQ(value, 42);
        EXPECT_NE(worker, loop_thread);
        weft::to_thread([] {});  // void
        EXPECT_THROW(weft::to_thread([] { throw std::invalid_argument("bad"); }),
                     std::invalid_argument);
        // Several at once: to_thread is an await, so gather runs each in a task of its own.
        auto [a, b] = weft::gather([] { return weft::to_thread(twice, 1); },
                                   [] { return weft::to_thread(twice, 2); });
        EXPECT_EQ(a + b, 6);
    });
}

TEST(Executor, ToThreadCarriesTheContextAndItsChangesStayOnTheWorker) {
    weft::run([] {
        weft::Loop& loop = weft::Loop::current();
        weft::set_default_executor(loop, std::make_unique<weft::ThreadPool>(1));  // one thread
        g_user.set("alice");
        std::string seen = weft::to_thread([] {
            std::string user = g_user.get();
            g_user.set("changed on the worker");
            return user;
        });
        EXPECT_EQ(seen, "alice");
        EXPECT_EQ(g_user.get(), "alice");  // not leaked back to the caller
        // Nor left on the worker thread: the next job there (without a Context) sees none.
        EXPECT_EQ(weft::run_in_executor(nullptr, [] { return g_user.get(); }).get(), "nobody");
    });
}

TEST(Executor, ToThreadFromManyTasksAtOnceEachCarriesItsOwnContext) {
    weft::run([] {
        g_user.set("parent");
        std::vector<weft::Task<bool>> tasks;
        for (int i = 0; i < 32; ++i) {
            tasks.push_back(weft::spawn([i] {
                std::string me = "task " + std::to_string(i);
                g_user.set(me);
                for (int round = 0; round < 5; ++round) {
                    bool same = weft::to_thread([&] { return g_user.get() == me; });
                    if (!same || g_user.get() != me) return false;
                }
                return true;
            }));
        }
        for (auto& t : tasks) EXPECT_TRUE(t.get());
        EXPECT_EQ(g_user.get(), "parent");
    });
}

TEST(Executor, RunInExecutorDoesNotCarryTheContext) {
    weft::run([] {
        weft::ThreadPool pool(1);
        g_user.set("bob");
        EXPECT_EQ(weft::run_in_executor(&pool, [] { return g_user.get(); }).get(), "nobody");
    });
}

TEST(Executor, RunCoroutineThreadsafeCarriesTheCallersContext) {
    weft::LoopThread background;
    background.start();
    auto token = g_user.set("carol");  // this thread's Context (not a fiber's)
    auto future = weft::run_coroutine_threadsafe(background, [] {
        std::string seen = g_user.get();
        g_user.set("changed in the task");
        return seen;
    });
    EXPECT_EQ(future.result(30s), "carol");
    EXPECT_EQ(g_user.get(), "carol");
    g_user.reset(token);
    background.stop();
    background.join();
}

TEST(Executor, SetDefaultExecutorIsUsedByRunInExecutorAndToThread) {
    weft::run([] {
        weft::Loop& loop = weft::Loop::current();
        auto pool = std::make_unique<weft::ThreadPool>(1);
        auto pool_thread = pool->submit([] { return std::this_thread::get_id(); }).result(30s);
        auto get_id = [] { return std::this_thread::get_id(); };
        weft::set_default_executor(loop, std::move(pool));
        EXPECT_EQ(weft::run_in_executor(nullptr, get_id).get(), pool_thread);
        EXPECT_EQ(weft::to_thread(get_id), pool_thread);
        // Replacing it: a job still queued on the old one runs and completes its future.
        std::atomic<bool> release{false};
        auto blocker = weft::run_in_executor(nullptr, [&] {
            while (!release.load()) std::this_thread::sleep_for(100us);
        });
        auto queued = weft::run_in_executor(nullptr, get_id);
        weft::set_default_executor(loop, std::make_unique<weft::ThreadPool>(1));
        EXPECT_NE(weft::to_thread(get_id), pool_thread);
        release = true;
        blocker.get();
        EXPECT_EQ(queued.get(), pool_thread);
        EXPECT_THROW(weft::set_default_executor(loop, nullptr), weft::InvalidStateError);
    });
}

TEST(Executor, DefaultPoolIsSizedAsThreadPoolExecutor) {
    size_t cores = std::max(1u, std::thread::hardware_concurrency());
    size_t expected = std::min<size_t>(32, cores + 4);
    EXPECT_EQ(weft::ThreadPool::default_workers(), expected);
    EXPECT_EQ(weft::ThreadPool().size(), expected);
    weft::run([&] {
        EXPECT_EQ(weft::detail::default_executor(weft::Loop::current()).size(), expected);
    });
}
