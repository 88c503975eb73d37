// Seed "async/await 深度解析", section 二: awaitables — 2.1 coroutines (nested awaits),
// 2.2 Task (three ways to create one; done / result / cancel / done callbacks), 2.3 Future
// (create_future, set from a call_later callback, and its other operations).
#include <weft/weft.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "tour.hpp"

using namespace std::chrono_literals;

// async def nested(): return 42
int nested() { return 42; }

void coroutines() {
    tour::section("2.1 coroutine objects");
    std::printf("%d\n", nested());  // print(await nested())
    auto coro = nested;             // coro = nested(): the work, not yet run
    int result = coro();            // result = await coro
    std::printf("%d\n", result);
}

void tasks() {
    tour::section("2.2 Task");
    auto task1 = weft::spawn(nested);                                       // asyncio.create_task(nested())
    auto task2 = weft::create_task(weft::Loop::current(), nested);          // ensure_future on a loop
    auto task3 = weft::create_task(weft::Loop::current(), nested, "task3");  // loop.create_task(nested())
    std::printf("%s\n", task1.done() ? "True" : "False");  // False: scheduled, not run yet
    task1.get();                                            // await task1
    std::printf("%s\n", task1.done() ? "True" : "False");  // True
    std::printf("%d\n", task1.result());                    // 42
    auto [r2, r3] = weft::gather(task2, task3);
    std::printf("task2 -> %d, %s -> %d\n", r2, task3.get_name().c_str(), r3);

    // Cancellable, with done callbacks.
    auto slow = weft::spawn({.name = "slow"}, [] {
        weft::sleep(tour::seconds(3600));
        return 0;
    });
    slow.add_done_callback([](weft::Task<int>& t) {
        std::printf("done callback: %s cancelled=%s\n", t.get_name().c_str(), t.cancelled() ? "True" : "False");
    });
    weft::sleep(0ms);  // let it start and suspend
    slow.cancel("no longer needed");
    try {
        slow.get();
    } catch (const weft::Cancelled& c) {
        std::printf("await slow: Cancelled(\"%s\")\n", c.message().c_str());
    }
    weft::sleep(0ms);  // done callbacks run with call_soon
}

void futures() {
    tour::section("2.3 Future");
    weft::Loop& loop = weft::Loop::current();  // loop = asyncio.get_running_loop()
    std::printf("<weft::Loop running=%s closed=%s debug=%s>\n", loop.is_running() ? "True" : "False",
                loop.is_closed() ? "True" : "False", loop.get_debug() ? "True" : "False");
    tour::varying("reactor: %s", weft::Loop::reactor_name());
    weft::Future<std::string> future = weft::create_future<std::string>(loop);  // loop.create_future()
    auto started = std::chrono::steady_clock::now();
    loop.call_later(tour::seconds(2), [future]() mutable {  // loop.call_later(2, set_result)
        std::puts("Setting result");
        future.set_result("done");
    });
    std::printf("%s\n", future.get().c_str());  // result = await future
    tour::varying("awaited %.3f s (2 seed seconds = %.1f s)", tour::since(started),
                  std::chrono::duration<double>(tour::seconds(2)).count());

    // set_exception, cancel, add_done_callback.
    weft::Future<int> failing(loop);
    failing.add_done_callback([](weft::Future<int>& f) {
        std::printf("done callback: exception set = %s\n", f.exception() ? "True" : "False");
    });
    loop.call_soon([failing]() mutable { failing.set_exception(std::runtime_error("disk full")); });
    try {
        failing.get();
    } catch (const std::runtime_error& e) {
        std::printf("await failing: runtime_error: %s\n", e.what());
    }
    weft::sleep(0ms);  // the done callback runs (call_soon)
    weft::Future<int> dropped(loop);
    bool cancelled_now = dropped.cancel();
    std::printf("cancel() = %s, cancelled() = %s\n", cancelled_now ? "True" : "False",
                dropped.cancelled() ? "True" : "False");
    try {
        dropped.result();
    } catch (const weft::Cancelled&) {
        std::puts("result() of a cancelled future: Cancelled");
    }
    try {
        dropped.set_result(1);
    } catch (const weft::InvalidStateError&) {
        std::puts("set_result() on a finished future: InvalidStateError");
    }
}

int main() {
    weft::run([] {
        coroutines();
        tasks();
        futures();
    });
}
