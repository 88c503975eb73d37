// The only file that includes Boost.Context: creating a fiber's first context and the
// switches (loop → fiber, fiber → loop, fiber → fiber), on the raw fcontext API. It switches
// and decides nothing: which fiber runs next and who frees a finished one are the
// scheduler's (it is told, after each switch, which fiber gave the thread).
//
// Each switch also swaps the C++ runtime's per-thread exception state. The Itanium C++ ABI
// (libstdc++ and libc++abi alike) keeps "the exceptions being handled" in one per-thread
// record; a fiber that suspends inside a catch block would otherwise find another fiber's
// exception on top of it when it resumes (`throw;` rethrowing the wrong exception).
//
// It is also the one file that tells the sanitizers about switches, so that ASan knows
// which stack is live (no false reports when a fiber throws) and TSan keeps one
// happens-before context per fiber. The calls compile away in ordinary builds.
#include <boost/context/detail/fcontext.hpp>

#include <execinfo.h>

#include "fiber/detail/fiber.hpp"

#include "core/detail/sanitizers.hpp"
#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

// From the Itanium C++ ABI; the record's layout is part of that ABI.
namespace __cxxabiv1 {
struct __cxa_eh_globals;
extern "C" __cxa_eh_globals* __cxa_get_globals() noexcept;
}  // namespace __cxxabiv1

namespace weft::detail {

namespace bc = boost::context::detail;

namespace {
// This thread's C++ exception record (see the top of the file), looked up once.
thread_local Fiber::ExceptionState* t_exceptions __attribute__((tls_model("initial-exec"))) =
    nullptr;

// ASan protocol: whoever switches away calls start_switch_fiber with the *target* stack
// and a slot for its own fake stack; whoever gains control calls finish_switch_fiber with
// that slot. The slots of the loop and of each fiber must be distinct (a shared slot
// crashes under detect_stack_use_after_return). A fiber's final switch passes no slot,
// which frees its fake stack.
// TSan protocol: switch the race detector's context right before the jump.
// Each kind of switch has its hook below, on the fibers' SanitizerState; in ordinary builds
// Fiber has no such state and the hooks are empty.
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
void tsan_switch(void* to) {
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(to, 0);
#else
    (void)to;
#endif
}
#endif

// The loop's stack is about to jump into f; own_fake_stack is the loop's slot.
void san_loop_leaves_for(Fiber* f, void** own_fake_stack) {
#ifdef WEFT_ASAN
    __sanitizer_start_switch_fiber(own_fake_stack, f->stack.top() - f->stack.usable(),
                                   f->stack.usable());
#else
    (void)own_fake_stack;
#endif
#ifdef WEFT_TSAN
    f->sanitizer.tsan_caller = __tsan_get_current_fiber();
#endif
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    tsan_switch(f->sanitizer.tsan_fiber);
#else
    (void)f;
#endif
}

// The loop's stack got the thread back.
void san_loop_arrives(void* own_fake_stack) {
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(own_fake_stack, nullptr, nullptr);
#else
    (void)own_fake_stack;
#endif
}

// Fiber f is about to jump back to the loop; a finished f keeps no fake stack.
void san_fiber_leaves_for_loop(Fiber* f, bool finished) {
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    Fiber::SanitizerState& san = f->sanitizer;
#ifdef WEFT_ASAN
    __sanitizer_start_switch_fiber(finished ? nullptr : &san.fake_stack, san.caller_bottom,
                                   san.caller_size);
#endif
    tsan_switch(san.tsan_caller);
#endif
    (void)f, (void)finished;
}

// Fiber f is about to jump straight to fiber g; g returns to the loop f returns to.
void san_fiber_leaves_for_fiber(Fiber* f, Fiber* g, bool finished) {
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    g->sanitizer.caller_bottom = f->sanitizer.caller_bottom;
    g->sanitizer.caller_size = f->sanitizer.caller_size;
    g->sanitizer.tsan_caller = f->sanitizer.tsan_caller;
#ifdef WEFT_ASAN
    __sanitizer_start_switch_fiber(finished ? nullptr : &f->sanitizer.fake_stack,
                                   g->stack.top() - g->stack.usable(), g->stack.usable());
#endif
    tsan_switch(g->sanitizer.tsan_fiber);
#endif
    (void)f, (void)g, (void)finished;
}

// Fiber self got the thread: from the loop (which it records as where it returns to) or
// from another fiber.
void san_fiber_arrives(Fiber* self, bool from_loop) {
#ifdef WEFT_ASAN
    Fiber::SanitizerState& san = self->sanitizer;
    if (from_loop)
        __sanitizer_finish_switch_fiber(san.fake_stack, &san.caller_bottom, &san.caller_size);
    else
        __sanitizer_finish_switch_fiber(san.fake_stack, nullptr, nullptr);
#endif
    (void)self, (void)from_loop;
}

Fiber::ExceptionState& thread_exception_state() noexcept {
    if (!t_exceptions)
        t_exceptions = reinterpret_cast<Fiber::ExceptionState*>(__cxxabiv1::__cxa_get_globals());
    return *t_exceptions;
}

// First thing whenever a fiber gets the thread. The jump's data says from where: null
// from the loop (whose context is where this fiber returns to), or the fiber that handed
// the thread over (whose context is saved here; the loop's was passed on before the jump).
// Returns the fiber that gave the thread, self when the loop did: the scheduler frees it
// if it finished (it could not free the stack it was running on).
Fiber* arrive(Fiber* self, bc::transfer_t from) {
    san_fiber_arrives(self, /*from_loop=*/!from.data);
    if (from.data) {
        auto* previous = static_cast<Fiber*>(from.data);
        previous->context = from.fctx;
        return previous;
    }
    self->return_context = from.fctx;
    return self;
}

// Fiber f gives the thread to fiber g (started or prepared, not running), skipping the
// loop; returns when f is resumed, with the fiber that gave it the thread (see arrive).
// A finished f never returns.
Fiber* hand_over(Fiber* f, Fiber* g, bool f_finished) {
    t_current_fiber = g;
    Fiber::ExceptionState& state = thread_exception_state();
    f->exceptions = state;
    state = g->exceptions;
    g->return_context = f->return_context;  // both belong to the loop that runs this step
    san_fiber_leaves_for_fiber(f, g, f_finished);
    return arrive(f, bc::jump_fcontext(g->context, f));
}

[[noreturn]] void entry(bc::transfer_t from) {
    Fiber* f = t_current_fiber;  // set by whoever switched here
    fiber_main(f, arrive(f, from));
}
}  // namespace

// Touched on every switch. initial-exec: one %fs-relative access instead of a call to
// __tls_get_addr (libweft is a static library linked into programs, where that model holds).
thread_local Fiber* t_current_fiber __attribute__((tls_model("initial-exec"))) = nullptr;

void context_prepare(Fiber* f) {
    f->context = bc::make_fcontext(f->stack.top(), f->stack.usable(), &entry);
#ifdef WEFT_TSAN
    f->sanitizer.tsan_fiber = __tsan_create_fiber(0);
#endif
}

void context_release(Fiber* f) {
#ifdef WEFT_TSAN
    if (f->sanitizer.tsan_fiber) __tsan_destroy_fiber(f->sanitizer.tsan_fiber);
    f->sanitizer.tsan_fiber = nullptr;
#endif
#ifdef WEFT_ASAN
    // The pooled stack is reused by another fiber: no poison of this one's frames may stay.
    __asan_unpoison_memory_region(f->stack.top() - f->stack.usable(), f->stack.usable());
#endif
    (void)f;
}

Fiber* context_switch_in(Fiber* f) {
    Fiber* outer = t_current_fiber;
    t_current_fiber = f;
    Fiber::ExceptionState& state = thread_exception_state();
    Fiber::ExceptionState outside = state;
    state = f->exceptions;
    void* own_fake_stack = nullptr;
    san_loop_leaves_for(f, &own_fake_stack);
    bc::transfer_t back = bc::jump_fcontext(f->context, nullptr);
    san_loop_arrives(own_fake_stack);
    // Whoever gives the thread back says who it is: f, or a fiber f handed over to.
    Fiber* last = static_cast<Fiber*>(back.data);
    last->context = back.fctx;
    last->exceptions = state;
    state = outside;
    t_current_fiber = outer;
    return last;
}

Fiber* context_switch_to(Fiber* f, Fiber* g) { return hand_over(f, g, /*f_finished=*/false); }

void context_exit(Fiber* f, Fiber* g) {
    if (g) {  // straight to the next fiber, which frees this one
        hand_over(f, g, /*f_finished=*/true);
        __builtin_unreachable();
    }
    san_fiber_leaves_for_loop(f, /*finished=*/true);
    bc::jump_fcontext(f->return_context, f);
    __builtin_unreachable();  // a finished fiber is never resumed
}

namespace {
struct Capture {
    void** frames;
    int max;
    int count;
};

// Runs on top of a suspended fiber's stack: records the call stack, then goes straight
// back. The fiber stays suspended, one frame deeper; when it is resumed for real, this
// function returns and the fiber continues as if its own switch had returned. It touches
// no stack memory of its own, so the sanitizers are not told about this brief visit.
__attribute__((no_sanitize("address", "thread")))
bc::transfer_t capture_on_fiber(bc::transfer_t from) {
    auto* c = static_cast<Capture*>(from.data);
    c->count = ::backtrace(c->frames, c->max);
    return bc::jump_fcontext(from.fctx, nullptr);
}
}  // namespace

int context_backtrace(Fiber* f, void** frames, int max) {
    if (f == t_current_fiber) return ::backtrace(frames, max);
    // The first backtrace() loads the unwinder, which needs a lot of stack: do that here,
    // not on top of a suspended fiber's possibly nearly full stack.
    static const int warmed_up = [] {
        void* frame[1];
        return ::backtrace(frame, 1);
    }();
    (void)warmed_up;
    Capture c{frames, max, 0};
    bc::transfer_t back = bc::ontop_fcontext(f->context, &c, &capture_on_fiber);
    f->context = back.fctx;
    return c.count;
}

Fiber* context_switch_out(Fiber* f) {
    san_fiber_leaves_for_loop(f, /*finished=*/false);
    return arrive(f, bc::jump_fcontext(f->return_context, f));
}

}  // namespace weft::detail
