// Seed "Python 异步编程", section 二 常用函数 (common functions): a loop running on a
// background thread and asyncio.run_coroutine_threadsafe from the main thread — a
// blocking result(timeout), a timeout, an error, and a done callback.
//
// The seed binds its loop with `Thread(self.loop.run_forever(), daemon=True)` — which
// runs the loop right there, on the calling thread, and never returns. weft::LoopThread
// owns both the loop and its thread, so that mistake cannot be written.
#include <weft/weft.hpp>

#include <cstdio>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "tour.hpp"

using tour::seconds;

// async def my_coroutine(): await asyncio.sleep(1); return "Done"
std::string my_coroutine() {
    weft::sleep(seconds(1));
    return "Done";
}

int main() {
    // loop = asyncio.new_event_loop(); t = Thread(target=run_event_loop, args=(loop,)); t.start()
    weft::LoopThread loop;
    loop.start();
    std::thread::id main_thread = std::this_thread::get_id();

    tour::section("run_coroutine_threadsafe: blocking result(timeout)");
    weft::ThreadFuture<std::string> future = weft::run_coroutine_threadsafe(loop, my_coroutine);
    try {
        std::string result = future.result(seconds(20));  // future.result(timeout=2), in seed seconds
        std::printf("Result: %s\n", result.c_str());
    } catch (const weft::TimeoutError&) {
        std::puts("Timeout!");
    } catch (const std::exception& e) {
        std::printf("Error: %s\n", e.what());
    }

    // A coroutine slower than the timeout: result() gives up; the task keeps running
    // until it is cancelled (cancelling the future cancels it on its loop).
    auto slow = weft::run_coroutine_threadsafe(loop, [] {
        weft::sleep(seconds(3600));
        return std::string("never");
    });
    try {
        slow.result(seconds(2));
    } catch (const weft::TimeoutError&) {
        std::puts("Timeout!");
    }
    slow.cancel();
    std::printf("cancelled: %s\n", slow.cancelled() ? "True" : "False");

    // An exception in the coroutine comes out of result().
    auto failing = weft::run_coroutine_threadsafe(loop, []() -> std::string {
        weft::sleep(seconds(1));
        throw std::runtime_error("the server said no");
    });
    try {
        failing.result(seconds(20));
    } catch (const std::exception& e) {
        std::printf("Error: %s\n", e.what());
    }

    tour::section("run_coroutine_threadsafe: a done callback (recommended)");
    std::promise<std::string> seen;  // what the callback saw, for this thread to print
    auto with_callback = weft::run_coroutine_threadsafe(loop, my_coroutine);
    // def callback(future): ... future.result() — runs on the loop's thread, as in asyncio.
    with_callback.add_done_callback([&](weft::ThreadFuture<std::string>& f) {
        std::string line;
        try {
            line = "Result: " + f.result();
        } catch (const std::exception& e) {
            line = std::string("Error: ") + e.what();
        }
        seen.set_value(line + (std::this_thread::get_id() == main_thread ? " (on the main thread)"
                                                                          : " (on the loop's thread)"));
    });
    std::printf("%s\n", seen.get_future().get().c_str());

    loop.stop();
    loop.join();
}
