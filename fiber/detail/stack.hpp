// Fiber stacks: mmap'd with a PROT_NONE guard page below, pooled per loop. Overflowing
// into the guard page is caught by a SIGSEGV handler running on an alternate signal stack,
// which names the fiber and aborts.
#pragma once

#include <cstddef>
#include <vector>

namespace weft::detail {

struct Stack {
    char* base = nullptr;  // lowest address: the guard page starts here
    size_t size = 0;       // whole mapping, guard page included
    char* top() const noexcept { return base + size; }
    size_t usable() const;
};

class StackPool {
public:
    static constexpr size_t kDefaultStackSize = 256 * 1024;

    explicit StackPool(size_t default_size = kDefaultStackSize) : default_size_(default_size) {}
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    // A stack with at least `usable` bytes (0: the pool's default). Throws SystemError.
    Stack allocate(size_t usable = 0);
    void release(Stack stack) noexcept;  // keeps a bounded number for reuse

    size_t default_size() const noexcept { return default_size_; }
    void set_default_size(size_t usable);  // throws std::system_error(EINVAL) below a minimum

private:
    size_t default_size_;
    std::vector<Stack> free_;  // all of default size
};

// The fiber whose stack is in use on this thread, for the overflow report. name must point
// at storage that lives as long as the fiber (read from the signal handler).
void set_running_stack(const Stack* stack, const char* name) noexcept;

// Installs the SIGSEGV handler (once per process) and this thread's alternate signal stack.
void install_overflow_guard();

}  // namespace weft::detail
