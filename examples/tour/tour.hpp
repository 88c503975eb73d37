// Shared by the seed tour (examples/tour/*.cpp): the seeds' delays scaled down so the
// whole tour runs in seconds, and the marking of lines that change from run to run.
//
// Every line a tour program prints is deterministic except those starting with "~ "
// (timings, ports, addresses); tests/examples/tour_test.sh compares the others.
#pragma once

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace tour {

using namespace std::chrono_literals;

// Line-buffered stdout, set before main: lines keep their order with stderr and threads,
// and nothing buffered is copied into the workers a ProcessPool forks.
inline const bool kLineBuffered = (std::setvbuf(stdout, nullptr, _IOLBF, 0), true);

// One of the seeds' seconds. Their `asyncio.sleep(1)` is weft::sleep(seconds(1)) here.
inline constexpr std::chrono::milliseconds kSeedSecond{100};
constexpr std::chrono::milliseconds seconds(int n) { return kSeedSecond * n; }

// A line that varies between runs: printed with the "~ " mark.
[[gnu::format(printf, 1, 2)]] inline void varying(const char* format, ...) {
    std::fputs("~ ", stdout);
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

// A section heading, as in the seeds.
inline void section(const char* title) { std::printf("\n== %s\n", title); }

// Seconds since `start`, for varying() lines.
inline double since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace tour
