// Seed "Python 异步编程", section 一: the asyncio library — getting the loop, asyncio.run
// with debug, create_task with a name (and the fire-and-forget task whose exception must
// not be lost), gather (ordered results, return_exceptions), wait_for timing out, wait
// with done / pending, and sleep with a result.
#include <weft/weft.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tour.hpp"

using namespace std::chrono_literals;
using tour::seconds;

// The loop's exception handler, printing the deterministic part of each report.
void print_report(weft::Loop&, const weft::ExceptionContext& c) {
    std::string message = c.message;
    size_t took = message.find(" took ");
    if (took != std::string::npos) {  // a debug-mode report: the duration varies
        tour::varying("%s", message.c_str());
        // A loaded machine may stall any slice past the threshold; only the blocker's
        // report is certain.
        if (message.find("'blocker'") == std::string::npos) return;
        message = message.substr(0, took) + " took too long";
    }
    std::printf("exception handler: %s", message.c_str());
    if (c.exception) {
        try {
            std::rethrow_exception(c.exception);
        } catch (const std::exception& e) {
            std::printf(": %s", e.what());
        }
    }
    std::printf("\n");
}

void run_with_debug() {
    tour::section("asyncio.run(main(), debug=True)");
    // loop = asyncio.get_event_loop(): outside weft::run there is none.
    std::printf("Loop::running() before run: %s\n", weft::Loop::running() ? "a loop" : "nullptr");
    weft::RunOptions options;
    options.debug = true;
    weft::run(
        [] {
            weft::Loop::current().set_exception_handler(print_report);
            std::puts("Hello");
            weft::sleep(seconds(1));
            std::puts("World");
            // What debug mode is for: a blocking call holds the whole loop.
            weft::spawn({.name = "blocker"}, [] { std::this_thread::sleep_for(150ms); }).get();
        },
        options);
}

// async def say_after(delay, what): await asyncio.sleep(delay); print(what)
void say_after(int delay, const char* what) {
    weft::sleep(seconds(delay));
    std::puts(what);
}

void create_task() {
    tour::section("asyncio.create_task(coro, name=)");
    auto task1 = weft::spawn({.name = "say-hello"}, say_after, 1, "hello");
    auto task2 = weft::spawn({.name = "say-world"}, say_after, 2, "world");
    weft::Loop& loop = weft::Loop::current();
    auto started = loop.time();
    tour::varying("started at %.3f", std::chrono::duration<double>(started.time_since_epoch()).count());
    std::printf("tasks: %s, %s\n", task1.get_name().c_str(), task2.get_name().c_str());
    task1.get();
    task2.get();
    tour::varying("finished at %.3f", std::chrono::duration<double>(loop.time().time_since_epoch()).count());
    std::printf("both done after about 2 seed seconds, not 3: %s\n",
                loop.time() - started < seconds(3) ? "yes" : "no");

    // Fire and forget: nobody keeps the task, and it still runs to the end.
    auto wait_for_close = [](std::chrono::milliseconds timeout) {
        weft::sleep(timeout);
        throw std::runtime_error("commit timed out");
    };
    weft::spawn({.name = "auto-close"}, wait_for_close, seconds(1));  // _ = asyncio.create_task(...)
    // ... and with a done callback that looks at the exception, so it is handled.
    auto task = weft::spawn({.name = "auto-close-2"}, wait_for_close, seconds(1));
    task.add_done_callback([](weft::Task<void>& t) {
        try {
            std::rethrow_exception(t.exception());
        } catch (const std::exception& e) {
            std::printf("done callback of %s: %s\n", t.get_name().c_str(), e.what());
        }
    });
    task = {};
    weft::sleep(seconds(2));  // the first one's exception, never retrieved, goes to the handler
}

// async def fetch_data(delay, name): await asyncio.sleep(delay); return f"{name} result after {delay}s"
std::string fetch_data(int delay, std::string name) {
    weft::sleep(seconds(delay));
    return name + " result after " + std::to_string(delay) + "s";
}

void gather() {
    tour::section("asyncio.gather(*aws, return_exceptions=False)");
    auto [a, b, c] = weft::gather([] { return fetch_data(3, "A"); }, [] { return fetch_data(1, "B"); },
                                  [] { return fetch_data(2, "C"); });
    std::printf("['%s', '%s', '%s']\n", a.c_str(), b.c_str(), c.c_str());  // input order

    // A list of tasks gives a vector, in input order too.
    std::vector<weft::Task<std::string>> tasks;
    for (int i = 3; i >= 1; --i) tasks.push_back(weft::spawn(fetch_data, i, std::string(1, char('A' + 3 - i))));
    for (auto& r : weft::gather(tasks)) std::printf("%s\n", r.c_str());

    // return_exceptions=True: a failure takes its result's place.
    auto [ok, failed] = weft::gather(weft::return_exceptions, [] { return fetch_data(1, "D"); },
                                     []() -> std::string { throw std::runtime_error("E failed"); });
    std::printf("ok: %s\n", ok.value().c_str());
    try {
        std::rethrow_exception(failed.error());
    } catch (const std::exception& e) {
        std::printf("failed: %s\n", e.what());
    }
    // Without it, the first failure is raised.
    try {
        weft::gather([] { return fetch_data(1, "F"); }, []() -> std::string { throw std::runtime_error("G failed"); });
    } catch (const std::runtime_error& e) {
        std::printf("gather raised: %s\n", e.what());
    }
}

void wait_for() {
    tour::section("asyncio.wait_for(aw, timeout)");
    // async def eternity(): await asyncio.sleep(3600); print('yay!')
    auto eternity = [] {
        weft::sleep(std::chrono::hours(1));
        std::puts("yay!");
    };
    try {
        weft::wait_for(eternity, seconds(5));  // wait, but no more than 5 (seed) seconds
    } catch (const weft::TimeoutError&) {
        std::puts("timeout!");
    }
}

void wait() {
    tour::section("asyncio.wait(aws, timeout)");
    auto t1 = weft::spawn({.name = "task1"}, [] {
        weft::sleep(seconds(2));
        return std::string("task1 done");
    });
    auto t2 = weft::spawn({.name = "task2"}, [] {
        weft::sleep(seconds(10));
        return std::string("task2 done");
    });
    auto [done, pending] = weft::wait(std::vector{t1, t2}, weft::ReturnWhen::all_completed, seconds(5));
    std::printf("Done tasks: [");
    for (auto& t : done) std::printf("'%s'", t.result().c_str());
    std::printf("]\nPending tasks: {");
    for (auto& t : pending) std::printf("<Task pending name='%s'>", t.get_name().c_str());
    std::printf("}\n");
    for (auto& t : pending) t.cancel();  // wait() cancels nothing itself
}

void sleep_with_result() {
    tour::section("asyncio.sleep(delay, result)");
    auto say_after = [](int delay, std::string what) {
        std::string result = weft::sleep(seconds(delay), what);  // sleeps, then returns what
        std::printf("After %ds: %s\n", delay, result.c_str());
        return result;
    };
    std::string result = say_after(1, "hello");
    std::printf("Result was: %s\n", result.c_str());
}

int main() {
    run_with_debug();
    weft::run([] {
        weft::Loop::current().set_exception_handler(print_report);
        create_task();
        gather();
        wait_for();
        wait();
        sleep_with_result();
    });
}
