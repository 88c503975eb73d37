// Future<T>: asyncio.Future's semantics on the loop, awaited from fibers.
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Future, ResultStatesAndErrors) {
    weft::Loop loop;
    weft::Future<int> f(loop);
    EXPECT_FALSE(f.done());
    EXPECT_THROW(f.result(), weft::InvalidStateError);
    EXPECT_THROW(f.exception(), weft::InvalidStateError);
    f.set_result(42);
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(f.result(), 42);
    EXPECT_EQ(f.exception(), nullptr);
    EXPECT_THROW(f.set_result(1), weft::InvalidStateError);
    EXPECT_FALSE(f.cancel());
}

TEST(Future, ExceptionIsRethrown) {
    weft::Loop loop;
    weft::Future<std::string> f(loop);
    f.set_exception(std::runtime_error("bad"));
    EXPECT_TRUE(f.done());
    EXPECT_THROW(f.result(), std::runtime_error);
    EXPECT_NE(f.exception(), nullptr);
}

TEST(Future, CancelMakesResultThrowCancelled) {
    weft::Loop loop;
    weft::Future<void> f(loop);
    EXPECT_TRUE(f.cancel("stop it"));
    EXPECT_TRUE(f.cancelled());
    EXPECT_TRUE(f.done());
    try {
        f.result();
        FAIL();
    } catch (const weft::Cancelled& c) {
        EXPECT_EQ(c.message(), "stop it");
    }
    EXPECT_THROW(f.exception(), weft::Cancelled);
    EXPECT_THROW(f.set_result(), weft::InvalidStateError);
}

TEST(Future, SetByCallLaterAndAwaitedInAFiber) {
    int got = weft::run([] {
        weft::Future<int> f;
        weft::Loop::current().call_later(5ms, [f]() mutable { f.set_result(7); });
        return weft::await(f) * 6;
    });
    EXPECT_EQ(got, 42);
}

TEST(Future, DoneCallbacksRunViaCallSoonInOrder) {
    weft::Loop loop;
    weft::Future<int> f(loop);
    std::vector<std::string> log;
    f.add_done_callback([&](weft::Future<int>& x) { log.push_back("a" + std::to_string(x.result())); });
    uint64_t id = f.add_done_callback([&](weft::Future<int>&) { log.push_back("removed"); });
    f.add_done_callback([&](weft::Future<int>&) { log.push_back("b"); });
    EXPECT_EQ(f.remove_done_callback(id), 1u);
    EXPECT_EQ(f.remove_done_callback(id), 0u);
    f.set_result(1);
    EXPECT_TRUE(log.empty());  // scheduled, not run inline
    loop.run_once(false);
    EXPECT_EQ(log, (std::vector<std::string>{"a1", "b"}));
    f.add_done_callback([&](weft::Future<int>&) { log.push_back("late"); });
    loop.run_once(false);
    EXPECT_EQ(log.back(), "late");
}

TEST(Future, ExceptionInDoneCallbackGoesToTheHandler) {
    weft::Loop loop;
    std::vector<std::string> messages;
    loop.set_exception_handler(
        [&](weft::Loop&, const weft::ExceptionContext& c) { messages.push_back(c.message); });
    weft::Future<void> f(loop);
    f.add_done_callback([](weft::Future<void>&) { throw std::runtime_error("cb"); });
    f.set_result();
    loop.run_once(false);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0], "Exception in callback");
}

TEST(Future, ManyWaitersWakeInOrder) {
    std::vector<int> order;
    weft::run([&] {
        weft::Future<void> gate;
        std::vector<weft::Task<void>> tasks;
        for (int i = 0; i < 5; ++i)
            tasks.push_back(weft::spawn([&, i] {
                gate.get();
                order.push_back(i);
            }));
        weft::sleep(1ms);
        gate.set_result();
        for (auto& t : tasks) t.get();
    });
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Future, CancellingTheWaiterCancelsTheFuture) {
    weft::run([] {
        weft::Future<int> f;
        auto waiter = weft::spawn([&] { return f.get(); });
        weft::sleep(0ms);
        waiter.cancel("enough");
        EXPECT_THROW(waiter.get(), weft::Cancelled);
        EXPECT_TRUE(f.cancelled());
    });
}

TEST(Future, AwaitOutsideAFiberIsAClearError) {
    weft::Loop loop;
    weft::Future<int> f(loop);
    try {
        f.get();
        FAIL();
    } catch (const weft::InvalidStateError& e) {
        EXPECT_NE(std::string(e.what()).find("Future::get"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("inside a fiber"), std::string::npos) << e.what();
    }
}

TEST(Future, NeverRetrievedExceptionIsReportedWhenDropped) {
    weft::Loop loop;
    std::vector<std::string> messages;
    loop.set_exception_handler(
        [&](weft::Loop&, const weft::ExceptionContext& c) { messages.push_back(c.message); });
    {
        weft::Future<int> f(loop);
        f.set_exception(std::runtime_error("lost"));
    }
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_NE(messages[0].find("never retrieved"), std::string::npos);
    {
        weft::Future<int> f(loop);
        f.set_exception(std::runtime_error("seen"));
        EXPECT_THROW(f.result(), std::runtime_error);
    }
    EXPECT_EQ(messages.size(), 1u);
}

// A user type made awaitable through the customization point.
namespace user {
struct Ticket {
    weft::Future<int> ready;
};
int weft_await(Ticket& t) { return t.ready.get() + 1; }
}  // namespace user

TEST(Future, UserTypesAreAwaitable) {
    static_assert(weft::Awaitable<user::Ticket>);
    static_assert(weft::Awaitable<weft::Future<int>>);
    static_assert(!weft::Awaitable<int>);
    int got = weft::run([] {
        user::Ticket t;
        weft::Loop::current().call_soon([f = t.ready]() mutable { f.set_result(9); });
        return weft::await(t);
    });
    EXPECT_EQ(got, 10);
}
