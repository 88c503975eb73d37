// The only file that includes Boost.Context: creating a fiber's first context and the two
// switches (loop → fiber, fiber → loop), on the raw fcontext API.
//
// Each switch also swaps the C++ runtime's per-thread exception state. The Itanium C++ ABI
// (libstdc++ and libc++abi alike) keeps "the exceptions being handled" in one per-thread
// record; a fiber that suspends inside a catch block would otherwise find another fiber's
// exception on top of it when it resumes (`throw;` rethrowing the wrong exception).
#include <boost/context/detail/fcontext.hpp>

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

void context_switch_out(Fiber* f) {
    bc::transfer_t back = bc::jump_fcontext(f->return_context, nullptr);
    f->return_context = back.fctx;
}

}  // namespace weft::detail
