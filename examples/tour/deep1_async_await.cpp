// Seed "async/await 深度解析", section 一: 1.1 coroutine function and coroutine object,
// 1.2 the await expression, 1.3 the event loop (the pseudo-code loop, and the three ways
// to get a loop).
//
// In weft an "async def" is any function run in a fiber; "await" is an ordinary call
// that suspends only the calling fiber. What asyncio calls a coroutine object — the
// work, created but not yet running — is a Task made on a loop that has not started.
#include <weft/weft.hpp>

#include <cstdio>
#include <string>

#include "tour.hpp"

// async def coro_func(): return "result"
std::string coro_func() { return "result"; }

void section_1_1() {
    tour::section("1.1 coroutine function and coroutine object");
    weft::Loop loop;
    // coro_obj = coro_func(): nothing runs until the loop does.
    weft::Task<std::string> coro_obj = weft::create_task(loop, coro_func);
    std::printf("type: weft::Task<std::string>, done() = %s\n", coro_obj.done() ? "true" : "false");
    // inspect.iscoroutine(coro_obj): the Awaitable concept says what can be awaited.
    std::printf("weft::Awaitable<Task<std::string>>: %s\n",
                weft::Awaitable<weft::Task<std::string>> ? "true" : "false");
    std::printf("weft::Awaitable<std::string>: %s\n", weft::Awaitable<std::string> ? "true" : "false");
    coro_obj.add_done_callback([&](auto&) { loop.stop(); });
    loop.run_forever();  // "must be run by the event loop or awaited"
    std::printf("after the loop ran it: done() = %s, result() = %s\n",
                coro_obj.done() ? "true" : "false", coro_obj.result().c_str());
    loop.close();
}

void section_1_2() {
    tour::section("1.2 await");
    // async def main(): print("Start"); result = await coro_func(); print("Got:", result)
    weft::run([] {
        std::puts("Start");
        auto result = coro_func();  // a nested "await coro()" is a plain call
        std::printf("Got: %s\n", result.c_str());
        // await on a Future: the fiber suspends, the loop runs other work (here: the
        // callback that sets the result), then the fiber resumes with the value.
        weft::Future<std::string> fut;
        weft::Loop::current().call_soon([fut]() mutable { fut.set_result("set by a callback"); });
        std::printf("Got: %s\n", weft::await(fut).c_str());
    });
}

void section_1_3() {
    tour::section("1.3 the event loop");
    // The pseudo-code loop: poll I/O, run the callbacks that became ready. run_once() is
    // one turn of it (timers, then ready callbacks, then a poll for I/O).
    weft::Loop loop;
    loop.call_soon([] { std::puts("turn 1: the ready callback ran; the poll then waits for the timer"); });
    loop.call_later(tour::seconds(1) / 10, [] { std::puts("turn 2: the timer fired"); });
    loop.run_once();       // its poll blocks until the timer is due
    loop.run_once(false);  // this poll only looks: nothing else is pending
    loop.close();

    // 1. asyncio.get_event_loop(): the loop running on this thread, if any.
    std::printf("Loop::running() outside any loop: %s\n", weft::Loop::running() ? "a loop" : "nullptr");
    // 2. asyncio.new_event_loop(): a Loop object; run it explicitly.
    weft::Loop fresh;
    std::printf("new loop: running=%s closed=%s\n", fresh.is_running() ? "true" : "false",
                fresh.is_closed() ? "true" : "false");
    fresh.close();
    // 3. asyncio.get_running_loop(): only where a loop runs; elsewhere a clear error.
    try {
        weft::Loop::current();
    } catch (const weft::InvalidStateError& e) {
        std::printf("Loop::current() outside a loop: InvalidStateError: %s\n", e.what());
    }
    weft::run([] {
        weft::Loop& loop = weft::Loop::current();
        std::printf("inside weft::run: Loop::current() is running: %s\n", loop.is_running() ? "true" : "false");
        weft::sleep(tour::seconds(1));  // async def main(): await asyncio.sleep(1)
        // One loop per thread: running a second one here is refused.
        weft::Loop second;
        try {
            second.run_forever();
        } catch (const weft::InvalidStateError& e) {
            std::printf("a second loop on this thread: InvalidStateError: %s\n", e.what());
        }
    });
    // "await" outside a fiber is an error too, not a silent block.
    try {
        weft::sleep(tour::seconds(1));
    } catch (const weft::InvalidStateError& e) {
        std::printf("weft::sleep outside a fiber: InvalidStateError: %s\n", e.what());
    }
}

int main() {
    section_1_1();
    section_1_2();
    section_1_3();
}
