// Fiber stacks: mmap'd with a PROT_NONE guard region below, pooled per loop. Overflowing
// into the guard region is caught by a SIGSEGV handler running on an alternate signal
// stack, which names the fiber and aborts.
#pragma once

#include <cstddef>
#include <vector>

namespace weft::detail {

struct Stack {
    char* base = nullptr;  // lowest address: the guard region (if any) starts here
    size_t size = 0;       // whole region, guard included
    bool guarded = true;
    bool fresh = false;      // never handed out: its pages were never touched
    size_t usable_size = 0;  // size without the guard
    char* top() const noexcept { return base + size; }
    size_t usable() const noexcept { return usable_size; }
    char* bottom() const noexcept { return top() - usable_size; }  // lowest usable byte
};

// The guard below each guarded stack: 64 KiB (or one page, if pages are larger). Code
// built with -fstack-clash-protection touches every page of a big frame in order, so its
// first touch past the bottom lands in the guard's top page; but GCC on arm64 probes only
// every 64 KiB (it assumes a 64 KiB guard), and code built without the flag may skip
// further. A bigger guard costs address space only: it is one PROT_NONE range made by the
// same mprotect, never backed by memory, and pooled stacks keep theirs.
size_t stack_guard_size() noexcept;

class StackPool {
public:
    static constexpr size_t kDefaultStackSize = 256 * 1024;

    explicit StackPool(size_t default_size = kDefaultStackSize);
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    // Puts a stack with at least `usable` bytes (0: the pool's default) in `out`. Throws
    // SystemError. Written in place, field by field, not returned: the caller's copy of a
    // returned Stack read it back with 16-byte loads over the 8-byte stores that had just
    // written it, which no x86 core forwards (a stall on every fiber start; issue 18).
    void allocate(Stack& out, size_t usable = 0);
    void release(const Stack& stack) noexcept;  // keeps a bounded number for reuse

    size_t default_size() const noexcept { return default_size_; }
    void set_default_size(size_t usable);  // throws std::system_error(EINVAL) below a minimum

    // A guard costs two kernel mappings per stack, and Linux allows ~65k mappings per
    // process by default (vm.max_map_count): about 32k guarded fibers at once. Without
    // guards, stacks are carved from shared slabs (one mapping per 64 stacks), for
    // hundreds of thousands of fibers; an overflow then corrupts memory silently.
    void set_guard_pages(bool on);
    bool guard_pages() const noexcept { return guard_pages_; }

private:
    Stack allocate_guarded(size_t usable);
    void add_slab();  // 64 fresh unguarded stacks onto free_

    size_t default_size_;
    size_t default_rounded_;  // default_size_ rounded up to whole pages: what a pooled stack has
    bool guard_pages_ = true;
    std::vector<Stack> free_;  // all of default size, of the current guard mode
    std::vector<Stack> slabs_;  // unguarded slabs, unmapped with the pool
};

// Installs the SIGSEGV handler (once per process) and this thread's alternate signal stack.
// Cheap once done on this thread (one thread-local flag): it runs before every fiber start.
void install_overflow_guard();

}  // namespace weft::detail
