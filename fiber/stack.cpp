// Guarded, pooled fiber stacks and the stack-overflow report.
#include "fiber/detail/stack.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "fiber/detail/fiber.hpp"
#include <weft/error.hpp>
#include <weft/task.hpp>

namespace weft::detail {

namespace {

constexpr size_t kMinStackSize = 16 * 1024;
// Enough for a warm loop to run ~16k fibers at once without a syscall per spawn; a pooled
// stack costs the pages its last fiber touched (usually one or two) plus two mappings.
constexpr size_t kMaxPooled = 16384;

size_t page_size() {
    static const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    return page;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }


// This thread's alternate signal stack: the handler cannot run on the overflowed stack.
// t_guard_installed says it is in place (plain data: checking it costs no TLS init call).
thread_local bool t_guard_installed __attribute__((tls_model("initial-exec"))) = false;
struct AltStack {
    void* memory = nullptr;
    ~AltStack() {
        t_guard_installed = false;
        if (!memory) return;
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        ::sigaltstack(&off, nullptr);
        std::free(memory);
    }
};
thread_local AltStack t_altstack;

struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

void write_str(const char* s) { [[maybe_unused]] ssize_t n = ::write(2, s, std::strlen(s)); }

// The interrupted stack pointer, or null where this platform's layout is not known here.
const char* fault_stack_pointer(void* ucontext) noexcept {
    [[maybe_unused]] auto* uc = static_cast<ucontext_t*>(ucontext);
#if defined(__linux__) && defined(__x86_64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__linux__) && defined(__aarch64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext.sp);
#elif defined(__APPLE__) && defined(__x86_64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext->__ss.__rsp);
#elif defined(__APPLE__) && defined(__aarch64__)
    return reinterpret_cast<const char*>(__darwin_arm_thread_state64_get_sp(uc->uc_mcontext->__ss));
#elif defined(__FreeBSD__) && defined(__x86_64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext.mc_rsp);
#elif defined(__FreeBSD__) && defined(__aarch64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext.mc_gpregs.gp_sp);
#else
    return nullptr;
#endif
}

// Why a fault is the running fiber's overflow, or null if it is not.
const char* overflow_reason(const Stack& stack, const char* addr, const char* sp) noexcept {
    if (!stack.guarded) return nullptr;
    const char* bottom = stack.bottom();
    // A touch anywhere in the guard: a deep call chain, or a big frame built with
    // -fstack-clash-protection (its probes go down page by page).
    if (addr >= stack.base && addr < bottom) return "guard hit";
    // A frame built without the flag can skip the whole guard. The fault below it (in a
    // hole, or in a neighbour stack's guard) is still ours if the stack pointer has left the
    // bottom too and the address lies in the frame it made: at or above the stack pointer,
    // or a push or pre-decrement just below it.
    constexpr uintptr_t kBelowSp = 4096;
    auto a = reinterpret_cast<uintptr_t>(addr), s = reinterpret_cast<uintptr_t>(sp);
    if (sp && sp < bottom && addr < bottom && a + kBelowSp >= s)
        return "stack pointer below its guard";
    return nullptr;
}

void on_fault(int signo, siginfo_t* info, void* ucontext) {
    const char* name = nullptr;
    const Stack* stack = running_fiber_stack(&name);
    const char* reason = stack ? overflow_reason(*stack, static_cast<const char*>(info->si_addr),
                                                 fault_stack_pointer(ucontext))
                               : nullptr;
    if (reason) {
        write_str("weft: fiber '");
        write_str(name && *name ? name : "(unnamed)");
        write_str("' overflowed its stack (");
        write_str(reason);
        write_str("); aborting\n");
        ::signal(SIGABRT, SIG_DFL);
        ::abort();
    }
    // Not ours: hand over to whoever was there before, or crash the default way.
    const struct sigaction& prev = signo == SIGSEGV ? g_previous_segv : g_previous_bus;
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction) return prev.sa_sigaction(signo, info, ucontext);
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        return prev.sa_handler(signo);
    }
    ::signal(signo, SIG_DFL);  // returning re-runs the faulting instruction: default crash
}

}  // namespace

size_t stack_guard_size() noexcept {
    static const size_t guard = round_up(64 * 1024, page_size());
    return guard;
}

const Stack* running_fiber_stack(const char** name) noexcept {
    Fiber* f = current_fiber();
    if (!f) return nullptr;
    *name = f->task ? f->task->name().c_str() : nullptr;
    return &f->stack;
}

namespace {
// A fresh stack's top page is written as soon as its fiber starts. Asking the kernel to
// fault it in (one madvise) costs a fifth of taking the fault (2.2 against 11 us per page
// on the AMD VM, which virtualises page tables; issue 18): at 1M fibers, seconds. Only that
// page, which the fiber writes anyway, so RSS does not change. Older kernels say EINVAL:
// then not again.
void populate_top_page(Stack& stack) noexcept {
    stack.fresh = false;
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    static std::atomic<bool> unsupported{false};
    if (unsupported.load(std::memory_order_relaxed)) return;
    const size_t page = page_size();
    if (::madvise(stack.top() - page, page, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        unsupported.store(true, std::memory_order_relaxed);
#endif
}

// A Stack copied field by field, as release() stores it and allocate() hands it out: a
// copy the compiler makes itself may move it in 16-byte halves, and a stack released and
// taken again at once (spawn after join) would then be read back from stores of another
// width, which stalled on the AMD VM (issue 18).
void copy_fields(Stack& to, const Stack& from) noexcept {
    to.base = from.base;
    to.size = from.size;
    to.guarded = from.guarded;
    to.fresh = from.fresh;
    to.usable_size = from.usable_size;
}
}  // namespace

StackPool::StackPool(size_t default_size)
    : default_size_(default_size), default_rounded_(round_up(default_size, page_size())) {}

void StackPool::allocate(Stack& out, size_t usable) {
    if (usable == 0 || usable == default_size_) {
        if (free_.empty() && !guard_pages_) add_slab();
        if (!free_.empty()) {
            copy_fields(out, free_.back());
            free_.pop_back();
            if (out.fresh) populate_top_page(out);
            return;
        }
        usable = default_size_;
    }
    out = allocate_guarded(usable < kMinStackSize ? kMinStackSize : usable);
}

void StackPool::add_slab() {
    constexpr size_t kStacksPerSlab = 64;
    size_t each = default_rounded_;
    size_t size = each * kStacksPerSlab;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap(fiber stack slab of " + std::to_string(size) + " bytes)");
    slabs_.push_back(Stack{.base = static_cast<char*>(p), .size = size, .guarded = false, .usable_size = size});
    for (size_t i = kStacksPerSlab; i-- > 0;)  // the lowest address is handed out first
        free_.push_back(Stack{.base = static_cast<char*>(p) + i * each, .size = each, .guarded = false,
                              .fresh = true, .usable_size = each});
}

Stack StackPool::allocate_guarded(size_t usable) {
    const size_t guard = stack_guard_size();
    size_t size = round_up(usable, page_size()) + guard;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap(fiber stack of " + std::to_string(size) + " bytes)");
    if (::mprotect(p, guard, PROT_NONE) < 0) {
        int err = errno;
        ::munmap(p, size);
        throw SystemError(err, "mprotect(fiber stack guard)" +
                                   std::string(err == ENOMEM ? ": out of kernel mappings; "
                                                               "raise vm.max_map_count or turn "
                                                               "guard pages off for this loop"
                                                             : ""));
    }
    Stack stack{.base = static_cast<char*>(p), .size = size, .guarded = true, .usable_size = size - guard};
    populate_top_page(stack);
    return stack;
}

void StackPool::release(const Stack& stack) noexcept {
    if (!stack.guarded) {  // slab stacks go back to the free list while their size is current
        if (!guard_pages_ && stack.size == default_rounded_) copy_fields(free_.emplace_back(), stack);
        return;                // else it stays unused in its slab until the pool goes
    }
    if (guard_pages_ && stack.usable() == default_rounded_ &&
        free_.size() < kMaxPooled) {
        copy_fields(free_.emplace_back(), stack);
        return;
    }
    ::munmap(stack.base, stack.size);
}

void StackPool::set_guard_pages(bool on) {
    if (on == guard_pages_) return;
    for (const Stack& s : free_)
        if (s.guarded) ::munmap(s.base, s.size);
    free_.clear();
    guard_pages_ = on;
}

void StackPool::set_default_size(size_t usable) {
    if (usable < kMinStackSize)
        throw Error(std::errc::invalid_argument,
                    "stack size " + std::to_string(usable) + " is below the minimum of " +
                        std::to_string(kMinStackSize));
    for (const Stack& s : free_)
        if (s.guarded) ::munmap(s.base, s.size);
    free_.clear();  // unguarded ones stay mapped in their slabs until the pool goes
    default_size_ = usable;
    default_rounded_ = round_up(usable, page_size());
}

StackPool::~StackPool() {
    for (const Stack& s : free_)
        if (s.guarded) ::munmap(s.base, s.size);
    for (const Stack& s : slabs_) ::munmap(s.base, s.size);
}

void install_overflow_guard() {
    if (t_guard_installed) [[likely]] return;
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGSEGV, &sa, &g_previous_segv);
        ::sigaction(SIGBUS, &sa, &g_previous_bus);
    });
    if (t_altstack.memory) {
        t_guard_installed = true;
        return;
    }
    stack_t alt{};
    alt.ss_size = 64 * 1024;
    alt.ss_sp = std::malloc(alt.ss_size);
    if (!alt.ss_sp) throw std::bad_alloc();
    if (::sigaltstack(&alt, nullptr) < 0) {
        int err = errno;
        std::free(alt.ss_sp);
        throw SystemError(err, "sigaltstack");
    }
    t_altstack.memory = alt.ss_sp;
    t_guard_installed = true;
}

}  // namespace weft::detail
