// The only file that includes Boost.Context: creating a fiber's first context and the two
// switches (loop → fiber, fiber → loop), on the raw fcontext API.
//
// Each switch also swaps the C++ runtime's per-thread exception state. The Itanium C++ ABI
// (libstdc++ and libc++abi alike) keeps "the exceptions being handled" in one per-thread
// record; a fiber that suspends inside a catch block would otherwise find another fiber's
// exception on top of it when it resumes (`throw;` rethrowing the wrong exception).
#include <boost/context/detail/fcontext.hpp>

#include <execinfo.h>

#include "detail/fiber.hpp"

// From the Itanium C++ ABI; the record's layout is part of that ABI.
namespace __cxxabiv1 {
struct __cxa_eh_globals;
extern "C" __cxa_eh_globals* __cxa_get_globals() noexcept;
}  // namespace __cxxabiv1

namespace weft::detail {

namespace bc = boost::context::detail;

namespace {
thread_local Fiber* t_current = nullptr;

Fiber::ExceptionState& thread_exception_state() noexcept {
    return *reinterpret_cast<Fiber::ExceptionState*>(__cxxabiv1::__cxa_get_globals());
}

[[noreturn]] void entry(bc::transfer_t from) {
    Fiber* f = static_cast<Fiber*>(from.data);
    f->return_context = from.fctx;
    fiber_main(f);
    f->state = Fiber::State::done;
    bc::jump_fcontext(f->return_context, nullptr);
    __builtin_unreachable();  // a finished fiber is never resumed
}
}  // namespace

Fiber* current_fiber() noexcept { return t_current; }

void context_prepare(Fiber* f) {
    f->context = bc::make_fcontext(f->stack.top(), f->stack.usable(), &entry);
}

void context_switch_in(Fiber* f) {
    Fiber* outer = t_current;
    t_current = f;
    Fiber::ExceptionState& state = thread_exception_state();
    Fiber::ExceptionState outside = state;
    state = f->exceptions;
    bc::transfer_t back = bc::jump_fcontext(f->context, f);
    f->context = back.fctx;
    f->exceptions = state;
    state = outside;
    t_current = outer;
}

namespace {
struct Capture {
    void** frames;
    int max;
    int count;
};

// Runs on top of a suspended fiber's stack: records the call stack, then goes straight
// back. The fiber stays suspended, one frame deeper; when it is resumed for real, this
// function returns and the fiber continues as if its own switch had returned.
bc::transfer_t capture_on_fiber(bc::transfer_t from) {
    auto* c = static_cast<Capture*>(from.data);
    c->count = ::backtrace(c->frames, c->max);
    return bc::jump_fcontext(from.fctx, nullptr);
}
}  // namespace

int context_backtrace(Fiber* f, void** frames, int max) {
    if (f == t_current) return ::backtrace(frames, max);
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

void context_switch_out(Fiber* f) {
    bc::transfer_t back = bc::jump_fcontext(f->return_context, nullptr);
    f->return_context = back.fctx;
}

}  // namespace weft::detail
