// What a loop says about itself: the exception handler and its rate-limited default,
// debug mode's timing of slow entries, and close(), which reports the work that will
// never run.
#include <weft/loop.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "core/detail/loop_state.hpp"

namespace weft {

using detail::ReadyEntry;

std::string describe(const std::source_location& where) {
    const char* file = where.file_name();
    for (const char* p = file; *p; ++p)
        if (*p == '/') file = p + 1;
    return std::string(file) + ":" + std::to_string(where.line()) + " (" +
           where.function_name() + ")";
}

// Debug mode: run one entry and report it if it held the loop too long.
void Loop::State::run_timed(const detail::ReadyKind* kind, void* self, uintptr_t arg) {
    std::string what = kind->describe(self, arg);
    TimePoint start = Clock::now();
    try {
        kind->run(self, arg);
    } catch (...) {
        report("Exception in ready entry", what);
    }
    Duration took = Clock::now() - start;
    if (took < slow_callback) return;
    std::string where = kind->locate ? kind->locate(*loop, self, arg) : std::string();
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", std::chrono::duration<double>(took).count());
    loop->call_exception_handler({"Executing " + what + " took " + secs + " seconds", nullptr,
                                  where.empty() ? what : where});
}

// Work that will never run, counted, with the first few named: reported once at close.
struct Loop::State::NeverRan {
    size_t count = 0;
    std::string sources;

    void note(const std::string& where) {
        if (++count <= 5) sources += (sources.empty() ? "" : "; ") + where;
    }
    void report(Loop& loop) const {
        if (count == 0) return;
        loop.call_exception_handler({"Loop closed with " + std::to_string(count) +
                                         " scheduled callback(s) that never ran",
                                     nullptr, sources + (count > 5 ? "; ..." : "")});
    }
};

void Loop::close() {
    State& s = *s_;
    if (s.closed) return;
    if (s.inherited()) return s.abandon_inherited();
    if (s.running) throw InvalidStateError("close: cannot close a running event loop");
    if (s.extension) s.extension->on_close(*this);  // may still run fibers to unwind them
    s.closed = true;
    State::NeverRan never_ran;
    s.discard_unrun(never_ran);
    for (uint32_t i = 0; i < s.slots.size(); ++i) {
        if (!s.slots[i].in_use) continue;
        if (s.slots[i].owner) s.slots[i].owner->loop_ = nullptr;  // the watch is detached
        s.free_slot(i);
    }
    s.signals.reset();  // restores the signals' dispositions and closes the pipe
    s.reactor.reset();
    never_ran.report(*this);
    s.report_suppressed();
}

// A fork() child's copy: the poller's registrations and the executor's threads belong to
// the parent, so nothing is unregistered, unwound or joined. The tasks and the fiber
// runtime are abandoned (the child's memory only).
void Loop::State::abandon_inherited() noexcept {
    closed = true;
    running = false;
    for (detail::IoSlot& slot : slots)
        if (slot.in_use && slot.owner) slot.owner->loop_ = nullptr;
    (void)extension.release();
    (void)signals.release();  // the routes and the pipe stay as the parent left them
    // Not even closed: a kqueue is not inherited at all, so its number may already name
    // another fd of the child's (its new loop's kqueue, say).
    (void)reactor.release();
}

// Frees every submission, ready entry and timer left, noting those worth a report.
void Loop::State::discard_unrun(NeverRan& never_ran) {
    // After close() no push succeeds; one that succeeded just before may not have linked its
    // node yet (drain() says busy until it does, a producer's next instruction).
    inbox->close();
    while (inbox->drain([&](detail::SubmitNode* node) {
        if (node->worth_reporting()) never_ran.note(describe(node->where()));
        node->release();
    }))
        std::this_thread::yield();
    while (!ready.empty()) {
        ReadyEntry e = ready.pop();
        if (std::string what = e.kind->discard(e.self, e.arg); !what.empty()) never_ran.note(what);
    }
    while (!timers.empty()) {
        detail::TimerNode* t = timers.pop();
        if (t->fire != &fire_timer_callback) {
            never_ran.note("a low-level timer");
            continue;
        }
        auto* node = static_cast<detail::CallbackNode*>(t);
        node->loop_ = nullptr;
        never_ran.note(describe(node->where()));
        node->unref();
    }
}

namespace {
// A server that reports every reset connection can produce thousands of reports a second:
// more than anyone reads, and enough to fill a pipe. Ten a second show what is going on.
constexpr unsigned kReportBurst = 10;
constexpr auto kReportWindow = std::chrono::seconds(1);

// Writes text to fd 2 only as far as it takes it now: a blocked stderr (a pipe nobody
// reads, a terminal stopped with ^S) must not stall the loop. POLLOUT on a pipe means at
// least PIPE_BUF bytes fit (POSIX's atomic write size; Linux and the BSDs both keep that
// promise), so a write of at most PIPE_BUF after it does not block. Its limit: another
// thread writing to stderr between the poll and the write can still make it block.
bool write_stderr_now(std::string_view text) noexcept {
    while (!text.empty()) {
        pollfd p{STDERR_FILENO, POLLOUT, 0};
        int ready = ::poll(&p, 1, 0);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) || !(p.revents & POLLOUT))
            return false;
        ssize_t n = ::write(STDERR_FILENO, text.data(), std::min(text.size(), size_t(PIPE_BUF)));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        text.remove_prefix(size_t(n));
    }
    return true;
}

bool print_report(const ExceptionContext& context) noexcept {
    try {
        std::string text = "weft: " + context.message;
        if (!context.source.empty()) text += "\n  source: " + context.source;
        if (context.exception) text += "\n  exception: " + describe_exception(context.exception);
        text += '\n';
        return write_stderr_now(text);
    } catch (...) {  // out of memory: nothing to print with
        return false;
    }
}
}  // namespace

void Loop::State::report_limited(const ExceptionContext& context) noexcept {
    auto now = std::chrono::steady_clock::now();
    if (now - report_window >= kReportWindow) {
        report_window = now;
        reports_in_window = 0;
    }
    if (reports_in_window >= kReportBurst) {
        ++reports_suppressed;
        return;
    }
    ++reports_in_window;
    report_suppressed();
    if (!print_report(context)) ++reports_suppressed;  // stderr is full: counted, not waited for
}

void Loop::State::report_suppressed() noexcept {
    if (reports_suppressed == 0) return;
    char line[160];
    std::snprintf(line, sizeof line,
                  "weft: %llu more report(s) suppressed (at most %u a second are printed, and "
                  "only while stderr takes them at once)\n",
                  static_cast<unsigned long long>(reports_suppressed), kReportBurst);
    if (write_stderr_now(line)) reports_suppressed = 0;
}

void Loop::set_exception_handler(ExceptionHandler handler) {
    s_->exception_handler = std::move(handler);
}

void Loop::call_exception_handler(const ExceptionContext& context) noexcept {
    if (!s_->exception_handler) return s_->report_limited(context);
    try {
        s_->exception_handler(*this, context);
    } catch (...) {
        default_exception_handler({"Unhandled error in exception handler",
                                   std::current_exception(), context.source});
        default_exception_handler(context);
    }
}

void Loop::default_exception_handler(const ExceptionContext& context) noexcept {
    print_report(context);
}

}  // namespace weft
