// An outside program built with `pkg-config --cflags weft` and nothing else: a fiber with a
// frame far bigger than its stack's guard must be stopped at the guard and named (the
// flags carry -fstack-clash-protection), never write into the memory beneath.
#include <sys/mman.h>

#include <cstddef>
#include <cstdio>
#include <weft/weft.hpp>

namespace {
constexpr std::size_t kFrame = 600 * 1024;  // the default stack is 256 KiB, the guard 64 KiB

__attribute__((noinline)) int big_frame() {
    char buf[kFrame];
    asm volatile("" : : "r"(buf) : "memory");  // the array escapes: kept whole
    volatile char* v = buf;
    v[0] = 1;  // its lowest byte first, as a callee below it would
    v[kFrame - 1] = 2;
    asm volatile("" : : "r"(buf) : "memory");
    return v[0] + v[kFrame - 1];
}
}  // namespace

int main() {
    weft::run([] {
        auto t = weft::spawn(weft::TaskOptions{"consumer-deep"}, [] {
            // Read-write memory where a frame that skipped the guard would land, as another
            // fiber's stack beneath would be (the guard and stack lie within 320 KiB of here).
            char here;
            char* beneath = &here - 400 * 1024 - (1 << 20);
            ::mmap(beneath, 1 << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            return big_frame();
        });
        return t.get();
    });
    std::puts("overflow went unnoticed");
    return 0;
}
