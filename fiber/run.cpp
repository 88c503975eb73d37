// weft::run's non-template halves: cancelling what is left at the end, and asyncio.run's
// Ctrl-C rule.
#include <weft/run.hpp>

#include <csignal>
#include <string>

#include "core/detail/platform.hpp"

#include "fiber/detail/runtime.hpp"

namespace weft::detail {

void cancel_all_tasks(Loop& loop) {
    auto pending = all_tasks(loop);
    if (pending.empty()) return;
    for (auto& t : pending) {
        t.cancel();
        // A finished task queues this no-op, so that turn's poll step does not block
        // (run_once ends in its poll step) and the loop below sees it at once.
        t.base()->add_done_callback([] {});
    }
    // As asyncio, wait for them to finish (clean-up may sleep or do I/O) — but not for
    // ever: after kShutdownGrace the loop closes and reports the ones still running.
    constexpr auto kShutdownGrace = std::chrono::seconds(10);
    auto deadline = loop.time() + kShutdownGrace;
    auto all_done = [&] {
        for (auto& t : pending)
            if (!t.done()) return false;
        return true;
    };
    while (!all_done() && loop.time() < deadline) {
        auto tick = loop.call_at(deadline, [] {});  // bounds the poll step's wait
        loop.run_once();
        tick.cancel();
    }
    // The last tasks' done callbacks (the no-ops above among them) were queued as they
    // finished: run them, so that close() finds nothing left that never ran.
    loop.run_once(false);
    for (auto& t : pending) {
        if (!t.done() || t.cancelled()) continue;
        std::string source = "Task '" + t.get_name() + "'";
        if (auto error = t.exception())
            loop.call_exception_handler(
                {"Unhandled exception during run() shutdown", error, source});
        else
            loop.call_exception_handler(
                {"Task ignored cancellation at the end of run(): " + t.get_name(), nullptr, source});
    }
}

void shutdown_default_executor(Loop& loop, Duration timeout) {
    FiberRuntime& rt = FiberRuntime::of(loop);
    rt.executor_shutdown_timeout = timeout;  // also for loop close, which shuts them too
    rt.shutdown_executors();
    // The jobs that finished meanwhile posted their completions: one turn takes them in
    // from the submission queue, the next runs them, so close() finds nothing unrun.
    loop.run_once(false);
    loop.run_once(false);
}

SigintCancelsMain::SigintCancelsMain(Loop& loop, TaskRef main) : loop_(loop), main_(main) {
    if (!is_main_thread()) return;
    struct sigaction current {};
    if (::sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
    try {
        loop_.add_signal_handler(SIGINT, [this] { on_sigint(); });
    } catch (const Error&) {  // SIGINT cannot be routed here: leave the default
        return;
    }
    installed_ = true;
}

SigintCancelsMain::~SigintCancelsMain() { release(); }

void SigintCancelsMain::release() noexcept {
    if (!installed_) return;
    installed_ = false;
    loop_.remove_signal_handler(SIGINT);  // restores SIG_DFL
}

void SigintCancelsMain::on_sigint() {
    // The first Ctrl-C cancels the main task, whose clean-up then runs; from here on SIGINT
    // has its default action again, so a second one ends a clean-up that hangs.
    release();
    if (main_.done()) return;
    interrupted_ = true;
    main_.cancel("KeyboardInterrupt");
}

}  // namespace weft::detail
