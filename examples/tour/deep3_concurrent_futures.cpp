// Seed "async/await 深度解析", section 三: concurrent.futures with the loop — 3.1 a
// ThreadPool for blocking I/O (run_in_executor + gather), 3.2 a ProcessPool for CPU work,
// 3.3 processes against threads, measured, 3.4 wrap_future.
//
// The seed fetches two web pages with `requests`; here a blocking HTTP GET written with
// plain POSIX sockets (a stand-in for any blocking library) runs on the pool's threads
// against an HTTP server this program starts on its own loop, on 127.0.0.1.
#include <weft/weft.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tour.hpp"

namespace http = weft::http;
using Clock = std::chrono::steady_clock;

// def blocking_io(url): return requests.get(url).content.decode('utf8')
// Blocks its thread: connect, send, read to EOF (5 s receive timeout), return the body.
std::string blocking_io(uint16_t port, std::string path) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) weft::throw_errno("socket");
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    try {
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) weft::throw_errno("connect");
        std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size()))
            weft::throw_errno("send");
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) != 0;) {
            if (n < 0) weft::throw_errno("recv");
            reply.append(buf, size_t(n));
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    size_t body = reply.find("\r\n\r\n");
    return body == std::string::npos ? reply : reply.substr(body + 4);
}

void thread_pool_io(uint16_t port) {
    tour::section("3.1 ThreadPoolExecutor with the loop");
    std::vector<std::string> urls = {"/baidu.com", "/s?id=1831698668695775055"};
    weft::ThreadPool pool(5);  // with ThreadPoolExecutor(max_workers=5) as pool:
    std::vector<weft::Future<std::string>> futures;
    for (const auto& url : urls) futures.push_back(weft::run_in_executor(&pool, blocking_io, port, url));
    auto results = weft::gather(futures);  // await asyncio.gather(*futures)
    std::printf("[");
    for (size_t i = 0; i < results.size(); ++i) std::printf("%s'%s'", i ? ", " : "", results[i].c_str());
    std::printf("]\n");
}  // the pool shuts down and joins its threads, as the `with` block does

// def cpu_bound(n): return sum(i * i for i in range(n)) — a plain function: the workers
// are forks of this program, so they call it by address, with its argument and result
// sent as bytes.
uint64_t cpu_bound(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; ++i) sum += i * i;
    return sum;
}

void process_pool_cpu(weft::ProcessPool& pool) {
    tour::section("3.2 ProcessPoolExecutor with the loop");
    std::vector<weft::Future<uint64_t>> tasks;  // loop.run_in_executor(pool, cpu_bound, n)
    for (int n : {6, 7, 8}) tasks.push_back(weft::run_in_executor(&pool, cpu_bound, n));
    auto results = weft::gather(tasks);
    std::printf("[%llu, %llu, %llu]\n", (unsigned long long)results[0],
                (unsigned long long)results[1], (unsigned long long)results[2]);
}

// CPU work the compiler cannot fold into a formula: a linear congruential walk.
uint64_t churn(uint64_t n) {
    uint64_t x = n, acc = 0;
    for (uint64_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        acc += x >> 59;
    }
    return acc;
}
// The registered-name form: a function of bytes to bytes, called by name.
int shared_counter = 0;  // one per process: a forked worker bumps its own copy
std::string bump_job(std::string_view) { return std::to_string(++shared_counter); }
std::string crash_job(std::string_view) {
    ::kill(::getpid(), SIGKILL);  // a worker dying mid-job, as a segfault would
    return {};
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void compare(weft::ProcessPool& processes, double process_startup_ms) {
    tour::section("3.3 ProcessPoolExecutor vs ThreadPoolExecutor");
    constexpr uint64_t kWork = 10'000'000;  // per job; 4 jobs on 2 workers each
    constexpr int kJobs = 4;

    auto t0 = Clock::now();
    std::vector<std::string> via_threads;
    double thread_startup_ms, thread_cpu_ms, thread_trip_us;
    {
        weft::ThreadPool threads(2);
        thread_startup_ms = ms_since(t0);
        auto t1 = Clock::now();
        std::vector<weft::Future<uint64_t>> jobs;
        for (int i = 0; i < kJobs; ++i) jobs.push_back(weft::run_in_executor(&threads, churn, kWork + i));
        for (uint64_t r : weft::gather(jobs)) via_threads.push_back(std::to_string(r));
        thread_cpu_ms = ms_since(t1);
        auto t2 = Clock::now();
        for (int i = 0; i < 100; ++i) weft::run_in_executor(&threads, [] { return 0; }).get();
        thread_trip_us = ms_since(t2) * 10;  // per trip, in µs
        // Shared memory: the job changes the caller's variable.
        weft::run_in_executor(&threads, [] { return ++shared_counter; }).get();
    }
    int after_thread_job = shared_counter;
    auto t1 = Clock::now();
    std::vector<weft::Future<uint64_t>> jobs;
    for (int i = 0; i < kJobs; ++i)
        jobs.push_back(weft::run_in_executor(&processes, churn, kWork + i));  // a plain function
    std::vector<std::string> via_processes;
    for (uint64_t r : weft::gather(jobs)) via_processes.push_back(std::to_string(r));
    double process_cpu_ms = ms_since(t1);
    auto t2 = Clock::now();
    for (int i = 0; i < 100; ++i) processes.submit("bump", "").get();  // ++shared_counter in a worker
    double process_trip_us = ms_since(t2) * 10;
    std::printf("same results from both pools: %s\n", via_threads == via_processes ? "yes" : "no");

    std::puts("| | ThreadPool | ProcessPool |");
    std::puts("| mechanism | threads of this process | forked worker processes |");
    std::printf("| memory | shared: after a thread job bumped it, our counter is %d |"
                " isolated: 100 jobs bumped the workers' copies, ours is still %d |\n",
                after_thread_job, shared_counter);
    std::puts("| GIL | none in C++: CPU work runs in parallel | none |");
    std::puts("| data | any C++ value, by reference |"
              " copies: plain values and strings, or bytes |");
    std::puts("| good for | blocking calls, CPU work on shared data | CPU or crash-prone work, isolated |");
    tour::varying("| start-up, 2 workers | %.3f ms | %.3f ms |", thread_startup_ms, process_startup_ms);
    tour::varying("| %d CPU jobs on 2 workers | %.1f ms | %.1f ms |", kJobs, thread_cpu_ms, process_cpu_ms);
    tour::varying("| round trip of an empty job | %.1f us | %.1f us |", thread_trip_us, process_trip_us);

    // Isolation: a worker that dies fails its job, and the pool replaces it.
    try {
        processes.submit("crash", "").get();
    } catch (const weft::BrokenProcessPool&) {
        std::puts("| crash | takes the whole program down | this job fails with BrokenProcessPool |");
    }
    std::printf("after the crash the pool still works: cpu_bound(8) = %llu\n",
                (unsigned long long)processes.submit(cpu_bound, 8).get());
}

void wrap_future() {
    tour::section("3.4 wrap_future");
    weft::ThreadPool pool;  // with ThreadPoolExecutor() as pool:
    weft::ThreadFuture<std::string> con_future = pool.submit([] {  // pool.submit(blocking_io)
        std::this_thread::sleep_for(tour::seconds(1));                // time.sleep(1)
        return std::string("IO result");
    });
    weft::Future<std::string> loop_future = weft::wrap_future(con_future);  // asyncio.wrap_future
    std::printf("%s\n", loop_future.get().c_str());                        // await asyncio_future
}

int main() {
    // Functions called by name in workers are registered before any pool forks.
    weft::register_process_function("bump", bump_job);
    weft::register_process_function("crash", crash_job);
    try {
        weft::run([] {
            // Forked first, before this program has other threads (as with Python's fork).
            auto t0 = Clock::now();
            weft::ProcessPool processes(2);
            double process_startup_ms = ms_since(t0);

            http::Application app;
            app.add_get("/*", [](http::Request& r) { return http::Response::text("<html>" + r.target() + "</html>"); });
            auto server = http::start_http_server(std::move(app), "127.0.0.1", 0);
            tour::varying("HTTP server on 127.0.0.1:%u", server->port());

            thread_pool_io(server->port());
            process_pool_cpu(processes);
            compare(processes, process_startup_ms);
            wrap_future();
            server->shutdown();
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "deep3_concurrent_futures: %s\n", e.what());
        return 1;
    }
}
