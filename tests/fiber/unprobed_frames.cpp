// Frames built without -fstack-clash-protection (tests/meson.build), as in a program that
// does not take weft.pc's flags: a frame that moves the stack pointer far in one step.
#include "unprobed_frames.hpp"

#include <cstddef>

namespace weft_test {

namespace {
// The stack pointer itself: a local's address may be on ASan's fake stack instead.
__attribute__((always_inline)) inline char* stack_pointer() {
    char* sp;
#if defined(__x86_64__)
    asm volatile("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    asm volatile("mov %0, sp" : "=r"(sp));
#else
    sp = static_cast<char*>(__builtin_frame_address(0));
#endif
    return sp;
}
}  // namespace

__attribute__((noinline)) void touch_far_below(char* target) {
    // One stack-pointer move down to about `target`, then its lowest byte is touched first,
    // as a callee's frame or the head of a big local would be.
    auto* p = static_cast<volatile char*>(__builtin_alloca(std::size_t(stack_pointer() - target)));
    asm volatile("" : : "r"(p) : "memory");
    p[0] = 1;
}

}  // namespace weft_test
