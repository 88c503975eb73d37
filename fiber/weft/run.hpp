// weft::run (asyncio.run): a new loop, fn as its main task, fn's result returned. At the
// end every task still pending is cancelled and joined; a task that ignored cancellation
// is reported through the loop's exception handler.
#pragma once

#include <string>
#include <utility>

#include <weft/task.hpp>

namespace weft {

struct RunOptions {
    bool debug = false;     // asyncio's debug=True: see Loop::set_debug
    size_t stack_size = 0;  // default fiber stack size for this loop (0: 256 KiB)
    bool guard_pages = true;  // see set_stack_guard_pages
};

namespace detail {
// Cancels every pending task of loop and runs it until they are done (bounded).
void cancel_all_tasks(Loop& loop);
}  // namespace detail

template <class F>
decltype(auto) run(F&& fn, RunOptions options = {}) {
    Loop loop;
    loop.set_debug(options.debug);
    if (options.stack_size) set_default_stack_size(loop, options.stack_size);
    if (!options.guard_pages) set_stack_guard_pages(loop, false);
    auto main = create_task(loop, std::forward<F>(fn), "main");
    main.add_done_callback([&loop](auto&) { loop.stop(); });
    loop.run_forever();
    detail::cancel_all_tasks(loop);
    loop.close();
    using R = decltype(main.result());
    if constexpr (std::is_void_v<R>)
        main.result();
    else
        return std::remove_cvref_t<R>(std::move(main.result()));
}

}  // namespace weft
