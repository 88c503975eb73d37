// Scopes whose set-up and tear-down suspend (asyncio's `async with` and
// `@asynccontextmanager`): with_resource(open, use, close) runs close(resource) on every
// way out of use — normal return, exception, cancellation — and close may suspend: a
// cancellation that arrives while it runs waits until it is done (DeferCancellation).
//
//     auto rows = weft::with_resource(
//         [&] { return Db::connect(addr); },          // may suspend
//         [&](Db& db) { return db.query("select 1"); },
//         [&](Db& db) { db.close(); });               // may suspend, always runs
//
// Plain RAII works too: a destructor may suspend on a fiber; wrap its body in a
// DeferCancellation so a second cancel cannot throw out of it.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include <weft/loop.hpp>
#include <weft/task.hpp>

namespace weft {

template <class Open, class Use, class Close>
decltype(auto) with_resource(Open&& open, Use&& use, Close&& close) {
    auto resource = std::forward<Open>(open)();
    using R = std::invoke_result_t<Use&, decltype(resource)&>;
    // Unwinding: close still runs; if it fails too, the first error wins and the second
    // goes to the loop's exception handler instead of being lost.
    auto close_after_error = [&] {
        DeferCancellation defer;
        try {
            close(resource);
        } catch (...) {
            if (Loop* loop = Loop::running())
                loop->call_exception_handler(
                    {"Exception in with_resource tear-down while another was in flight",
                     std::current_exception(), ""});
        }
    };
    if constexpr (std::is_void_v<R>) {
        try {
            use(resource);
        } catch (...) {
            close_after_error();
            throw;
        }
        DeferCancellation defer;
        close(resource);  // outside the try: a failing close runs once and propagates
    } else {
        R result = [&]() -> R {
            try {
                return use(resource);
            } catch (...) {
                close_after_error();
                throw;
            }
        }();
        {
            DeferCancellation defer;
            close(resource);
        }
        return result;
    }
}

}  // namespace weft
