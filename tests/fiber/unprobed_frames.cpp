// Frames built without -fstack-clash-protection (tests/meson.build), as in a program that
// does not take weft.pc's flags: a frame that moves the stack pointer far in one step.
#include "unprobed_frames.hpp"

#include <cstddef>

namespace weft_test {

__attribute__((noinline)) void touch_far_below(char* target) {
    char here;
    asm volatile("" : : "r"(&here) : "memory");
    // One stack-pointer move down to about `target`, then its lowest byte is touched first,
    // as a callee's frame or the head of a big local would be.
    auto* p = static_cast<volatile char*>(__builtin_alloca(std::size_t(&here - target)));
    asm volatile("" : : "r"(p) : "memory");
    p[0] = 1;
}

}  // namespace weft_test
