// A fiber that overflows its stack is stopped at its guard and named in the abort message,
// however big the frame that overflows: never a bare SIGSEGV, never another stack written.
#include <weft/weft.hpp>

#include <sys/mman.h>

#include <cstddef>
#include <cstdio>

#include <gtest/gtest.h>

#include "fiber/detail/fiber.hpp"  // running_fiber_stack: where the guard is

#include "unprobed_frames.hpp"

namespace {
__attribute__((noinline)) int recurse(int depth) {
    volatile char frame[1024];
    frame[0] = char(depth);
    if (depth > 1'000'000) return frame[0];
    return recurse(depth + 1) + frame[0];
}

// A frame of N bytes, built with this suite's flags (-fstack-clash-protection where the
// compiler has it). The array escapes, so the optimiser keeps it whole; its lowest byte is
// written first, as a callee below it or a memset of its head would.
template <std::size_t N>
__attribute__((noinline)) int big_frame() {
    char buf[N];
    asm volatile("" : : "r"(buf) : "memory");
    volatile char* v = buf;
    v[0] = 1;
    v[N - 1] = 2;
    asm volatile("" : : "r"(buf) : "memory");
    return v[0] + v[N - 1];
}

struct StackSpan {
    char* guard;   // lowest byte of the guard
    char* bottom;  // lowest usable byte
};

StackSpan running_stack() {
    const char* name = nullptr;
    const weft::detail::Stack* s = weft::detail::running_fiber_stack(&name);
    return {s->base, s->top() - s->usable()};
}

// Fills up to `size` bytes right below `below` with read-write memory, 64 KiB at a time,
// until a range is taken. A frame that skipped the guard would write there silently, as
// into another fiber's stack beneath: without this, it might fault in a hole instead.
void map_below(char* below, std::size_t size) {
    constexpr std::size_t kStep = 64 * 1024;
    for (std::size_t off = kStep; off <= size; off += kStep) {
        void* want = below - off;
        void* p = ::mmap(want, kStep, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return;
        if (p != want) {
            ::munmap(p, kStep);
            return;
        }
    }
}

// An inaccessible 64 KiB somewhere below `below` (as another stack's guard would be), or null.
char* hole_below(char* below) {
    constexpr std::size_t kSize = 64 * 1024;
    for (std::size_t gap = 2 << 20; gap <= (std::size_t(64) << 20); gap *= 2) {
        void* p = ::mmap(below - gap - kSize, kSize, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return nullptr;
        if (static_cast<char*>(p) + kSize <= below) return static_cast<char*>(p);
        ::munmap(p, kSize);
    }
    return nullptr;
}

// Runs `overflow` in a fiber named 'big-frame' with the default stack and 8 MiB of
// read-write memory right below its guard. Returns only if nothing stopped the overflow.
template <class F>
void run_overflowing_fiber(F overflow) {
    weft::run([&] {
        auto t = weft::spawn(weft::TaskOptions{"big-frame"}, [&] {
            StackSpan s = running_stack();
            map_below(s.guard, 8 << 20);
            overflow(s);
        });
        t.get();
    });
    std::fprintf(stderr, "the overflow went unnoticed\n");
}
}  // namespace

TEST(StackOverflowDeathTest, MessageNamesTheFiber) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(weft::run([] {
                     auto t = weft::spawn(weft::TaskOptions{"deep-recursion"}, [] { return recurse(0); });
                     return t.get();
                 }),
                 "fiber 'deep-recursion' overflowed its stack");
}

constexpr const char* kGuardHit = "fiber 'big-frame' overflowed its stack \\(guard hit\\)";

// Frames far bigger than the guard (the default stack is 256 KiB, the guard 64 KiB): the
// probes -fstack-clash-protection puts in each page of the frame hit the guard first (a
// frame without them would fault further down, or write into what lies there).
TEST(StackOverflowDeathTest, FrameFarBiggerThanTheGuardNamesTheFiber) {
#ifndef WEFT_TEST_STACK_CLASH_PROTECTION
    GTEST_SKIP() << "the compiler has no -fstack-clash-protection for this target";
#endif
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(run_overflowing_fiber([](StackSpan) { big_frame<400 * 1024>(); }), kGuardHit);
    EXPECT_DEATH(run_overflowing_fiber([](StackSpan) { big_frame<600 * 1024>(); }), kGuardHit);
    EXPECT_DEATH(run_overflowing_fiber([](StackSpan) { big_frame<4 * 1024 * 1024>(); }), kGuardHit);
}

// Code built without the flag moves the stack pointer in one step: a first touch anywhere
// in the guard names the fiber, not only in its top page.
TEST(StackOverflowDeathTest, UnprobedTouchAnywhereInTheGuardNamesTheFiber) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        run_overflowing_fiber([](StackSpan s) { weft_test::touch_far_below(s.bottom - 512); }),
        kGuardHit);
    EXPECT_DEATH(run_overflowing_fiber(
                     [](StackSpan s) { weft_test::touch_far_below(s.bottom - 32 * 1024); }),
                 kGuardHit);
    EXPECT_DEATH(
        run_overflowing_fiber([](StackSpan s) { weft_test::touch_far_below(s.guard + 512); }),
        kGuardHit);
}

// Further down, past the guard: a fault there (here in an inaccessible range 2 MiB or more below,
// as another stack's guard would be) is still this fiber's, since its stack pointer has
// left its stack too.
TEST(StackOverflowDeathTest, UnprobedFaultBelowTheGuardNamesTheFiber) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(weft::run([] {
                     auto t = weft::spawn(weft::TaskOptions{"big-frame"}, [] {
                         StackSpan s = running_stack();
                         char* hole = hole_below(s.guard);
                         if (!hole) {
                             std::fprintf(stderr, "no inaccessible page below the stack\n");
                             return;
                         }
                         weft_test::touch_far_below(hole + 32 * 1024);
                     });
                     t.get();
                 }),
                 "fiber 'big-frame' overflowed its stack \\(stack pointer below its guard\\)");
}
