// Loop::State: everything a Loop owns, shared by the files that each do one of its jobs —
// loop.cpp (the turn and scheduling), io_watch.cpp (the I/O slots and IoWatch),
// loop_reports.cpp (close-time reporting, debug timing, the exception handler).
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <weft/error.hpp>
#include <weft/io_watch.hpp>
#include <weft/loop.hpp>

#include "core/detail/inbox.hpp"
#include "core/detail/loop_seam.hpp"
#include "core/detail/reactor.hpp"
#include "core/detail/ready_queue.hpp"
#include "core/detail/signal_source.hpp"
#include "core/detail/timer_heap.hpp"

namespace weft::detail {

// Bumped in a fork() child (loop.cpp registers the handler). A loop remembers the value it
// was made under; a different one means it is a copy inherited from the parent.
inline std::atomic<uint64_t> g_fork_generation{0};
uint64_t fork_generation() noexcept;  // registers the atfork handler on first use

// One watched fd: its IoWatch's callback and the readiness bookkeeping of its directions.
struct IoSlot {
    int fd = -1;
    uint32_t gen = 1;  // bumped on free: tokens of earlier owners stop matching
    uint32_t interest = 0;
    uint32_t ready = 0;    // reported, not yet cleared by the owner
    uint32_t pending = 0;  // arrived from the reactor, not yet dispatched
    uint32_t missed = 0;   // arrived while already ready: owed a report after clear_ready
    bool in_use = false;
    bool queued = false;  // a dispatch entry is in the ready queue
    IoWatch* owner = nullptr;
    IoWatch::Callback callback;

    uint64_t token(uint32_t index) const { return uint64_t(gen) << 32 | index; }
};

constexpr uint32_t kNoSlot = UINT32_MAX;
constexpr size_t kMaxSubmissionsPerTurn = 4096;
// While work stays ready, the zero-timeout poll is made after this many turns or this
// many ready entries run, whichever comes first (each syscall costs ~0.3 µs here, about
// ten trivial turns; Tokio looks every 61 tasks).
constexpr unsigned kMaxTurnsWithoutPoll = 128;
constexpr size_t kMaxEntriesWithoutPoll = 512;
// Before a poll that may block, a loop whose last look at the inbox found submissions
// watches it this long first: the next one is usually microseconds away, and taking it
// without sleeping spares the producer a wake-up (a syscall) and the loop a sleep. Only
// then, so an idle loop burns no CPU; short, as I/O that arrives meanwhile waits for it.
constexpr auto kInboxSpin = std::chrono::microseconds(20);

}  // namespace weft::detail

namespace weft {

struct Loop::State {
    Loop* loop;
    std::unique_ptr<detail::Reactor> reactor = std::make_unique<detail::Reactor>();
    std::shared_ptr<detail::Inbox> inbox;
    detail::TimerHeap timers;
    detail::ReadyQueue ready;
    std::deque<detail::IoSlot> slots;        // deque: stable while a callback adds watches
    std::vector<uint32_t> free_slots;
    std::vector<uint32_t> slot_of_fd;        // fd -> slot index, kNoSlot if unwatched
    uint32_t dispatching = detail::kNoSlot;  // slot whose callback is running
    bool free_after_dispatch = false;        // that slot was reset by its own callback
    std::unique_ptr<detail::SignalSource> signals;  // made by the first add_signal_handler
    ExceptionHandler exception_handler;
    std::unique_ptr<detail::LoopExtension> extension;  // the fiber runtime, if any
    const void* extension_key = nullptr;               // its type (LoopSeam::extension<T>)
    bool running = false;
    bool stopping = false;
    bool debug = false;
    Duration slow_callback = std::chrono::milliseconds(100);
    std::thread::id owner = std::this_thread::get_id();  // the thread that runs the loop
    bool inbox_backlog = false;  // the last drain left submissions queued
    bool inbox_active = false;   // the last drain took submissions
    unsigned turns_without_poll = 0;
    size_t entries_without_poll = 0;
    size_t watched_fds = 0;     // IoWatches registered with the reactor
    uint32_t signals_seen = 0;  // detail::signals_arrived() at the last poll
    size_t step_remaining = 0;  // entries of the ready step in progress not yet run
    bool forever = false;       // inside run_forever: turns may begin without the loop
    bool closed = false;
    // The loop's own reports (no exception handler set): at most kReportBurst per
    // kReportWindow reach stderr; the rest are counted and summarised with the next one
    // printed, or at close. Loop thread only.
    std::chrono::steady_clock::time_point report_window{};
    unsigned reports_in_window = 0;
    uint64_t reports_suppressed = 0;
    const uint64_t born_in = detail::fork_generation();
    static constexpr int kPollCapacity = 256;
    detail::ReactorEvent events[kPollCapacity];

    bool inherited() const noexcept {
        return born_in != detail::g_fork_generation.load(std::memory_order_relaxed);
    }
    void check_not_inherited(const char* what) const {
        if (inherited())
            throw InvalidStateError(std::string(what) +
                                    ": this event loop was inherited across fork(); the "
                                    "child process must create its own Loop");
    }

    explicit State(Loop* l) : loop(l) {
        inbox = std::make_shared<detail::Inbox>(l, reactor.get());
    }

    void report(const char* message, const std::string& source) {
        loop->call_exception_handler({message, std::current_exception(), source});
    }
    void report_limited(const ExceptionContext& context) noexcept;
    void report_suppressed() noexcept;

    // close(), in loop_reports.cpp.
    struct NeverRan;
    void abandon_inherited() noexcept;
    void discard_unrun(NeverRan& never_ran);

    // While entries stay ready, may this turn skip its zero-timeout look at the OS? Within
    // the budget, yes; and always while the OS has nothing to tell: no fd is watched but
    // the signal pipe, and no signal arrived since the last poll. (The reactor's own
    // wake-up stands for the inbox, which is checked every turn anyway.)
    bool may_skip_poll() const noexcept {
        if (watched_fds == 0) return true;
        const bool signal_pipe = signals && signals->watching();
        if (signal_pipe && signals_seen != detail::signals_arrived()) return false;  // news there
        return watched_fds == size_t(signal_pipe) ||
               (turns_without_poll < detail::kMaxTurnsWithoutPoll &&
                entries_without_poll < detail::kMaxEntriesWithoutPoll);
    }
    void turn(bool may_block);
    bool begin_step_early() noexcept;
    // LoopSeam's post(), take_next_ready() and their sum (a yield) share these, inlined:
    // every fiber wake-up and hand-off comes through here.
    [[gnu::always_inline]] void post(const detail::ReadyKind* kind, void* self, uintptr_t arg) {
        if (closed || debug) [[unlikely]] {
            loop->check_open("post");
            loop->check_thread("post");
        }
        ready.push({kind, self, arg});
    }
    [[gnu::always_inline]] void* take_next(const detail::ReadyKind* kind) noexcept {
        if (step_remaining == 0 && !begin_step_early()) return nullptr;
        // debug mode never starts a step early, but may be switched on inside one
        if (debug || ready.empty() || ready.front().kind != kind) return nullptr;
        --step_remaining;
        return ready.pop().self;
    }
    void run_due_timers();
    void run_ready();
    void run_timed(const detail::ReadyKind* kind, void* self, uintptr_t arg);
    void poll(bool may_block);
    void drain_inbox();
    bool submission_soon() noexcept;  // watches the inbox for up to kInboxSpin
    void on_io_event(uint64_t token, uint32_t events);
    uint32_t allocate_slot(int fd);
    void free_slot(uint32_t index) noexcept;
    void release_slot(uint32_t index) noexcept;

    // The loop's own kinds of ready entry: self is the node, or this State for I/O and
    // signals; arg is this State, the slot's token, or the signal number.
    static const detail::ReadyKind callback_entry;    // loop.cpp
    static const detail::ReadyKind submission_entry;  // loop.cpp
    static const detail::ReadyKind signal_entry;      // loop.cpp
    static const detail::ReadyKind io_entry;          // io_watch.cpp
    static void fire_timer_callback(detail::TimerNode* timer);
};

}  // namespace weft
