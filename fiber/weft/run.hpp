// weft::run (asyncio.run): a new loop, fn as its main task, fn's result returned. At the
// end every task still pending is cancelled and joined; a task that ignored cancellation
// (or failed while being cancelled) is reported through the loop's exception handler.
#pragma once

#include <string>
#include <utility>

#include <weft/task.hpp>

namespace weft {

struct RunOptions {
    bool debug = false;     // asyncio's debug=True: see Loop::set_debug
    size_t stack_size = 0;  // default fiber stack size for this loop (0: 256 KiB)
    bool guard_pages = true;  // see set_stack_guard_pages
    // How long run() waits at its end for executor jobs still running (asyncio.run: 300 s,
    // shutdown_default_executor's timeout). Past it, run() reports them and returns; the
    // jobs finish on their own and what they send back is dropped.
    Duration executor_shutdown_timeout = std::chrono::seconds(300);
};

namespace detail {
// Cancels every pending task of loop and runs it until they are done (bounded).
void cancel_all_tasks(Loop& loop);
// asyncio.run's loop.shutdown_default_executor(): waits for the jobs still running on the
// loop's pools, at most `timeout`, and lets their completions run.
void shutdown_default_executor(Loop& loop, Duration timeout);

// asyncio.run's Ctrl-C rule (3.11): on the main thread, while SIGINT has its default
// action, the first SIGINT cancels the main task instead of killing the process; SIGINT
// then has its default action again. Does nothing elsewhere.
class SigintCancelsMain {
public:
    SigintCancelsMain(Loop& loop, TaskRef main);
    ~SigintCancelsMain();
    SigintCancelsMain(const SigintCancelsMain&) = delete;
    SigintCancelsMain& operator=(const SigintCancelsMain&) = delete;
    void release() noexcept;  // SIGINT back to its default action
    bool interrupted() const noexcept { return interrupted_; }

private:
    void on_sigint();
    Loop& loop_;
    TaskRef main_;
    bool installed_ = false;
    bool interrupted_ = false;
};
}  // namespace detail

// Runs fn(), then cancels and waits for the tasks it left behind (silently: that is what
// run() is for), and closes the loop. On the main thread, a Ctrl-C (SIGINT with its
// default action) cancels fn's task — its clean-up runs — and run() then throws
// KeyboardInterrupt, unless fn swallowed the cancellation; a second Ctrl-C kills the
// process as usual.
template <class F>
decltype(auto) run(F&& fn, RunOptions options = {}) {
    Loop loop;
    loop.set_debug(options.debug);
    if (options.stack_size) set_default_stack_size(loop, options.stack_size);
    if (!options.guard_pages) set_stack_guard_pages(loop, false);
    auto main = create_task(loop, std::forward<F>(fn), "main");
    main.add_done_callback([&loop](auto&) { loop.stop(); });
    detail::SigintCancelsMain sigint(loop, main);
    loop.run_forever();
    sigint.release();
    detail::cancel_all_tasks(loop);
    detail::shutdown_default_executor(loop, options.executor_shutdown_timeout);
    loop.close();
    if (sigint.interrupted() && main.cancelled()) throw KeyboardInterrupt();
    using R = decltype(main.result());
    if constexpr (std::is_void_v<R>)
        main.result();
    else
        return std::remove_cvref_t<R>(std::move(main.result()));
}

}  // namespace weft
