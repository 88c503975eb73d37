// Seed "Python 异步编程", section 事件循环 (the event loop): one loop per thread, bound to
// a background thread (weft::LoopThread, which owns both), and loop.call_soon_threadsafe
// setting an Event from another thread — the one safe way in — then stopping the loop.
#include <weft/weft.hpp>

#include <cstdio>
#include <memory>
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

    tour::section("call_soon_threadsafe: event.set() from another thread");
    // A fiber on the loop waits for an Event; the Event belongs to the loop, so the main
    // thread may not touch it directly — it asks the loop to call event.set().
    auto event = std::make_shared<weft::Event>();
    auto waiter = weft::run_coroutine_threadsafe(loop, [event] {
        event->wait();  // returns at once if it was set before the wait began
        return std::string("the waiter woke up");
    });
    std::thread setter([&] {
        loop.call_soon_threadsafe([event] {  // loop.call_soon_threadsafe(event.set)
            std::puts("event.set() runs on the loop's thread");
            event->set();
        });
    });
    setter.join();
    std::printf("%s\n", waiter.result(seconds(20)).c_str());

    tour::section("stopping the background loop");
    loop.stop();  // it finishes what was submitted before, then closes
    loop.join();
    try {
        weft::run_coroutine_threadsafe(loop, my_coroutine);
    } catch (const weft::InvalidStateError&) {
        std::puts("submitting to a stopped loop: InvalidStateError");
    }
}
