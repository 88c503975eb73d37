// Seed "Python 异步编程", section 二: the async/await syntax — async def, await (on a
// coroutine, a Task, and an object with __await__), async with, and async for (the
// AsyncCounter with __aiter__ / __anext__ / StopAsyncIteration).
#include <weft/weft.hpp>

#include <cstdio>
#include <optional>
#include <string>

#include "tour.hpp"

using tour::seconds;

// async def my_coroutine(): print("This is a coroutine"); return "Done"
std::string my_coroutine() {
    std::puts("This is a coroutine");
    return "Done";
}

void async_def() {
    tour::section("1. async def");
    auto coro = my_coroutine;  // coro = my_coroutine(): not run yet
    std::puts("coro holds the function; nothing has run");
    std::string result = weft::run(coro);  // result = asyncio.run(coro)
    std::printf("%s\n", result.c_str());
}

// An object with __await__: weft::await(x) calls weft_await(x), found by ADL.
struct Countdown {
    int from;
    friend int weft_await(Countdown& c) {
        for (int i = c.from; i > 0; --i) weft::sleep(seconds(1) / 10);
        return c.from;
    }
};
static_assert(weft::Awaitable<Countdown>);

// async def nested(): return 42
int nested() { return 42; }

void await_() {
    tour::section("2. await");
    int result1 = nested();  // await nested(): a plain call in a fiber
    std::printf("%d\n", result1);
    auto task = weft::spawn(nested);  // task = asyncio.create_task(nested())
    int result2 = weft::await(task);  // await task
    std::printf("%d\n", result2);
    weft::Future<int> future;
    weft::Loop::current().call_later(seconds(1) / 10, [future]() mutable { future.set_result(7); });
    std::printf("await future: %d\n", weft::await(future));
    Countdown countdown{3};
    std::printf("await Countdown{3} (its own __await__): %d\n", weft::await(countdown));
}

// class AsyncContextManager with __aenter__ returning "context value".
class AsyncContextManager {
public:
    AsyncContextManager() {  // __aenter__
        std::puts("Entering context");
        weft::sleep(seconds(1));
    }
    ~AsyncContextManager() {  // __aexit__
        weft::DeferCancellation defer;
        std::puts("Exiting context");
        weft::sleep(seconds(1));
    }
    AsyncContextManager(const AsyncContextManager&) = delete;
    AsyncContextManager& operator=(const AsyncContextManager&) = delete;
    std::string value() const { return "context value"; }
};

void async_with() {
    tour::section("3. async with");
    AsyncContextManager manager;  // async with AsyncContextManager() as value:
    std::printf("Inside context with value: %s\n", manager.value().c_str());
}

// class AsyncCounter: __aiter__ / __anext__, StopAsyncIteration at the limit. In weft the
// body of an async generator is a fiber that yields values; `async for` is a range-for.
weft::Generator<int> AsyncCounter(int limit) {
    return weft::Generator<int>([limit](auto& yield) {
        for (int counter = 1; counter <= limit; ++counter) {
            weft::sleep(seconds(1) / 10);  // await asyncio.sleep(0.1)
            yield(counter);
        }
    });  // returning is StopAsyncIteration
}

void async_for() {
    tour::section("4. async for");
    for (int number : AsyncCounter(5)) std::printf("%d\n", number);  // async for number in AsyncCounter(5)

    // __anext__ by hand: next() gives nullopt where Python raises StopAsyncIteration.
    auto counter = AsyncCounter(2);
    while (std::optional<int> n = counter.next()) std::printf("next() = %d\n", *n);
    std::puts("next() = nullopt (StopAsyncIteration)");

    // A queue between fibers is the other "async for" source.
    weft::Queue<int> queue;
    auto producer = weft::spawn([&] {
        for (int i = 1; i <= 3; ++i) queue.put(i * 10);
        queue.put(-1);  // end marker
    });
    for (int v; (v = queue.get()) != -1;) std::printf("queue: %d\n", v);
    producer.get();
}

int main() {
    async_def();
    weft::run([] {
        await_();
        async_with();
        async_for();
    });
}
