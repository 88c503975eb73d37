// The only file that includes Boost.Context: creating a fiber's first context and the two
// switches (loop → fiber, fiber → loop), on the raw fcontext API.
#include <boost/context/detail/fcontext.hpp>

#include "detail/fiber.hpp"

namespace weft::detail {

namespace bc = boost::context::detail;

namespace {
thread_local Fiber* t_current = nullptr;

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
    bc::transfer_t back = bc::jump_fcontext(f->context, f);
    f->context = back.fctx;
    t_current = outer;
}

void context_switch_out(Fiber* f) {
    bc::transfer_t back = bc::jump_fcontext(f->return_context, nullptr);
    f->return_context = back.fctx;
}

}  // namespace weft::detail
