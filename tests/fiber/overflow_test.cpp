// A fiber that overflows its stack hits the guard page; the report names the fiber.
#include <weft/weft.hpp>

#include <gtest/gtest.h>

namespace {
__attribute__((noinline)) int recurse(int depth) {
    volatile char frame[1024];
    frame[0] = char(depth);
    if (depth > 1'000'000) return frame[0];
    return recurse(depth + 1) + frame[0];
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
