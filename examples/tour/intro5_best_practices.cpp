// Seed "Python 异步编程", section 五: the best practices, each shown — stay asynchronous
// (blocking calls stall the loop: intro4_pros_cons shows it), handle exceptions, group
// related tasks, set timeouts.
#include <weft/weft.hpp>

#include <cstdio>
#include <stdexcept>

#include "tour.hpp"

using tour::seconds;

void practices() {
    tour::section("best practices: handle exceptions, group tasks, set timeouts");
    // Handle exceptions: a task's exception reaches whoever awaits it.
    auto failing = weft::spawn([]() -> int { throw std::runtime_error("upstream returned 503"); });
    try {
        failing.get();
    } catch (const std::runtime_error& e) {
        std::printf("caught: %s\n", e.what());
    }
    // Group related tasks: `async with asyncio.TaskGroup() as tg` — a failing child cancels
    // its siblings and the body, and the group reports every failure.
    try {
        weft::task_group([](weft::TaskGroup& group) {
            group.spawn([] {
                weft::sleep(seconds(1));
                throw std::runtime_error("child 1 failed");
            });
            group.spawn([] {
                try {
                    weft::sleep(seconds(10));
                } catch (const weft::Cancelled&) {
                    std::puts("child 2 cancelled because its sibling failed");
                    throw;
                }
            });
            try {
                weft::sleep(seconds(30));  // the body's own work
            } catch (const weft::Cancelled&) {
                std::puts("the group's body cancelled too, after 1 seed second");
                throw;
            }
        });
    } catch (const weft::TaskGroupError& e) {
        std::printf("TaskGroupError with %zu failure(s)\n", e.errors().size());
    }
    // Set timeouts: `async with asyncio.timeout(2)`.
    try {
        weft::timeout(seconds(2), [] { weft::sleep(seconds(60)); });
    } catch (const weft::TimeoutError&) {
        std::puts("timeout scope: TimeoutError after 2 seed seconds");
    }
}

int main() {
    weft::run([] { practices(); });
}
