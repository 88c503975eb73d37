// Loop: the turn (timers → ready → poll), scheduling callbacks, timers and submissions,
// the fiber layer's ready entries, signals, and which loop runs on this thread.
#include <weft/loop.hpp>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <string>
#include <thread>

#include "core/detail/loop_state.hpp"
#include "core/detail/platform.hpp"

namespace weft {

using detail::kMaxSubmissionsPerTurn;
using detail::ReadyEntry;

namespace {
thread_local Loop* t_running __attribute__((tls_model("initial-exec"))) = nullptr;  // see context.cpp

void on_fork_child() noexcept {
    detail::g_fork_generation.fetch_add(1, std::memory_order_relaxed);
    t_running = nullptr;  // the forking thread's loop is the parent's: a new one may run
}
}  // namespace

uint64_t detail::fork_generation() noexcept {
    static const int registered = ::pthread_atfork(nullptr, nullptr, &on_fork_child);
    (void)registered;
    return g_fork_generation.load(std::memory_order_relaxed);
}

// ---- the turn ---------------------------------------------------------------------

void Loop::State::turn(bool may_block) {
    if (!timers.empty()) run_due_timers();
    run_ready();
    // While work stays ready, a look at the OS is needed only now and then: skipping the
    // syscall for a bounded number of turns keeps busy fibers fast without starving I/O.
    if (may_block && !ready.empty() && may_skip_poll()) {
        ++turns_without_poll;
        if (inbox_backlog || inbox->maybe_pending()) [[unlikely]] drain_inbox();
        return;
    }
    poll(may_block);
}

// A fiber suspends at the end of a ready step. If the loop's next turn would fire no
// timer, skip its poll (within the same budget poll() keeps) and find nothing from other
// threads, that turn would only start the next step: start it here instead, and the
// fiber can hand the thread to the step's first fiber without a round trip through the
// loop's stack. run_ready() carries on with this step when the thread comes back.
bool Loop::State::begin_step_early() noexcept {
    if (!forever || stopping || debug || ready.empty() || inbox_backlog) return false;
    if (!may_skip_poll()) return false;
    if (inherited() || inbox->maybe_pending()) return false;
    if (const detail::TimerNode* t = timers.top(); t && t->deadline <= Clock::now()) return false;
    ++turns_without_poll;
    entries_without_poll += ready.size();
    step_remaining = ready.size();
    return true;
}

void Loop::State::run_due_timers() {
    const TimePoint now = Clock::now();
    const uint64_t seq_limit = timers.next_seq();  // timers added by this step wait
    while (detail::TimerNode* t = timers.top()) {
        if (t->deadline > now || t->seq >= seq_limit) break;
        timers.pop();
        try {
            t->fire(t);
        } catch (...) {
            report("Exception in timer", "");
        }
    }
}

void Loop::State::run_ready() {
    // A member, not a local: a fiber may take entries of this step itself (take_next_ready).
    // Zero again however the step ends, so nothing outside a step hands fibers over.
    struct EndStep {
        size_t& remaining;
        ~EndStep() { remaining = 0; }
    } end_step{step_remaining};
    entries_without_poll += ready.size();
    for (step_remaining = ready.size(); step_remaining > 0 && !ready.empty();) {
        --step_remaining;
        // Field by field, not as a ReadyEntry copy: GCC copies the entry through the stack
        // with one 16-byte store and reads the call's arguments back with 8-byte loads,
        // which stalled there on the AMD VM (44% of run_ready's samples); reading the
        // fields took BM_CallSoon from 0.90x to 1.04x Asio's post (issue 18).
        const ReadyEntry& next = ready.front();
        const detail::ReadyKind* kind = next.kind;
        void* self = next.self;
        const uintptr_t arg = next.arg;
        ready.drop_front();
        if (debug) [[unlikely]] {
            run_timed(kind, self, arg);
            continue;
        }
        try {
            kind->run(self, arg);
        } catch (...) {
            report("Exception in ready entry", "");
        }
    }
}

void Loop::State::poll(bool may_block) {
    int timeout_ms = -1;
    if (!may_block || !ready.empty() || stopping || inbox_backlog) {
        timeout_ms = 0;
    } else if (const detail::TimerNode* t = timers.top()) {
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(t->deadline - Clock::now());
        timeout_ms = wait.count() <= 0 ? 0 : wait.count() > INT_MAX ? INT_MAX : int(wait.count());
    }
    turns_without_poll = 0;
    entries_without_poll = 0;
    signals_seen = detail::signals_arrived();  // before the poll: a later one is seen next turn
    if (timeout_ms != 0 && inbox_active && submission_soon()) timeout_ms = 0;
    // Producers wake a loop that may block, and only then (see inbox.hpp).
    const bool may_sleep = timeout_ms != 0 && inbox->prepare_to_block();
    int n = reactor->poll(may_sleep ? timeout_ms : 0, events, kPollCapacity);
    if (may_sleep) inbox->awake();
    for (int i = 0; i < n; ++i) on_io_event(events[i].token, events[i].events);
    drain_inbox();
}

void Loop::State::drain_inbox() {
    const size_t before = ready.size();
    // Bounded, so producers that never pause cannot keep the loop from running callbacks.
    inbox_backlog = inbox->drain(
        [this](detail::SubmitNode* node) { ready.push({&submission_entry, node, uintptr_t(this)}); },
        kMaxSubmissionsPerTurn);
    inbox_active = ready.size() != before;
}

bool Loop::State::submission_soon() noexcept {
    const auto until = Clock::now() + detail::kInboxSpin;
    do {
        for (int i = 0; i < 16; ++i) {
            if (inbox->maybe_pending()) return true;
            detail::cpu_relax();
        }
    } while (Clock::now() < until);
    return false;
}

// ---- ready entries ------------------------------------------------------------------

// call_soon's callbacks: self is the node (the queue's reference), arg the State.
const detail::ReadyKind Loop::State::callback_entry = {
    .run = [](void* p, uintptr_t state) {
        auto* node = static_cast<detail::CallbackNode*>(p);
        if (!node->cancelled_) {
            try {
                node->invoke();
            } catch (...) {
                reinterpret_cast<State*>(state)->report("Exception in callback", describe(node->where()));
            }
        }
        node->unref();
    },
    .describe = [](void* p, uintptr_t) {
        return "callback " + describe(static_cast<detail::CallbackNode*>(p)->where());
    },
    .locate = nullptr,
    .discard = [](void* p, uintptr_t) {
        auto* node = static_cast<detail::CallbackNode*>(p);
        std::string what = node->cancelled_ ? "" : describe(node->where());
        node->unref();
        return what;
    },
};

// call_soon_threadsafe's callbacks, taken from the inbox: self is the node, arg the State.
const detail::ReadyKind Loop::State::submission_entry = {
    .run = [](void* p, uintptr_t state) {
        auto* node = static_cast<detail::SubmitNode*>(p);
        struct Release {
            detail::SubmitNode* node;
            ~Release() { node->release(); }
        } release{node};
        if (node->cancelled()) return;
        try {
            node->invoke();
        } catch (...) {
            reinterpret_cast<State*>(state)->report("Exception in call_soon_threadsafe callback",
                                                    describe(node->where()));
        }
    },
    .describe = [](void* p, uintptr_t) {
        return "callback " + describe(static_cast<detail::SubmitNode*>(p)->where());
    },
    .locate = nullptr,
    .discard = [](void* p, uintptr_t) {
        auto* node = static_cast<detail::SubmitNode*>(p);
        std::string what = node->worth_reporting() ? describe(node->where()) : "";
        node->release();
        return what;
    },
};

// A signal that arrived (queued by the signal source's pipe watch): self is the State,
// arg the signal number.
const detail::ReadyKind Loop::State::signal_entry = {
    .run = [](void* p, uintptr_t signo) { static_cast<State*>(p)->signals->run(int(signo)); },
    .describe = [](void*, uintptr_t signo) { return "signal handler " + std::to_string(signo); },
    .locate = nullptr,
    .discard = [](void*, uintptr_t) { return std::string(); },
};

void Loop::State::fire_timer_callback(detail::TimerNode* timer) {
    auto* node = static_cast<detail::CallbackNode*>(timer);
    Loop* loop = node->loop_;
    node->loop_ = nullptr;
    if (!node->cancelled_) {
        try {
            node->invoke();
        } catch (...) {
            loop->s_->report("Exception in timer callback", describe(node->where()));
        }
    }
    node->unref();
}

// ---- Loop ---------------------------------------------------------------------------

Loop::Loop() : s_(std::make_unique<State>(this)) {}

Loop::~Loop() {
    if (s_->running && !s_->inherited()) {
        std::fprintf(stderr, "weft: Loop destroyed while it is running (from its own callback?)\n");
        std::abort();
    }
    close();
}

Loop* Loop::running() noexcept { return t_running; }

Loop& Loop::current() {
    if (!t_running) throw InvalidStateError("Loop::current: no running event loop on this thread");
    return *t_running;
}

const char* Loop::reactor_name() noexcept { return detail::Reactor::name(); }

bool Loop::is_running() const noexcept { return s_->running; }
bool Loop::is_closed() const noexcept { return s_->closed; }

void Loop::check_open(const char* what) const {
    if (s_->closed) throw InvalidStateError(std::string(what) + ": event loop is closed");
}

namespace {
struct RunningScope {
    Loop* loop;
    bool& running;
    RunningScope(Loop* l, bool& r, const char* what) : loop(l), running(r) {
        if (running) throw InvalidStateError(std::string(what) + ": this event loop is already running");
        if (t_running)
            throw InvalidStateError(std::string(what) +
                                    ": another event loop is already running on this thread");
        running = true;
        t_running = loop;
    }
    ~RunningScope() {
        running = false;
        t_running = nullptr;
    }
};
}  // namespace

void Loop::run_forever() {
    check_open("run_forever");
    s_->check_not_inherited("run_forever");
    RunningScope scope(this, s_->running, "run_forever");
    s_->owner = std::this_thread::get_id();
    struct Forever {
        bool& flag;
        explicit Forever(bool& f) : flag(f) { flag = true; }
        ~Forever() { flag = false; }
    } forever(s_->forever);
    for (;;) {
        s_->check_not_inherited("run_forever");  // a callback or task called fork()
        s_->turn(true);
        if (s_->stopping) break;
    }
    s_->stopping = false;
}

void Loop::run_once(bool may_block) {
    check_open("run_once");
    s_->check_not_inherited("run_once");
    RunningScope scope(this, s_->running, "run_once");
    s_->owner = std::this_thread::get_id();
    s_->turn(may_block);
    s_->stopping = false;
}

void Loop::stop() noexcept { s_->stopping = true; }

void Loop::set_debug(bool on) noexcept { s_->debug = on; }
bool Loop::get_debug() const noexcept { return s_->debug; }
void Loop::set_slow_callback_duration(Duration d) noexcept { s_->slow_callback = d; }
Duration Loop::slow_callback_duration() const noexcept { return s_->slow_callback; }

void Loop::check_thread(const char* what) const {
    if (s_->debug && std::this_thread::get_id() != s_->owner)
        throw InvalidStateError(std::string(what) +
                                ": called from a thread other than the loop's (use "
                                "call_soon_threadsafe)");
}

// A callback the loop will not take: drop the queue's reference and throw why.
void Loop::check_accepts(detail::CallbackNode* node, const char* what) const {
    try {
        check_open(what);
        if (s_->debug) check_thread(what);
    } catch (...) {
        node->cancelled_ = true;
        node->unref();
        throw;
    }
}

void Loop::schedule_soon(detail::CallbackNode* node) {
    if (s_->closed || s_->debug) [[unlikely]] check_accepts(node, "call_soon");
    s_->ready.push({&State::callback_entry, node, uintptr_t(s_.get())});
}

void Loop::schedule_timer(detail::CallbackNode* node) {
    if (s_->closed || s_->debug) [[unlikely]] check_accepts(node, "call_at");
    node->fire = &State::fire_timer_callback;
    node->loop_ = this;
    s_->timers.push(node);
}

void Loop::submit_threadsafe(detail::SubmitNode* node) {
    if (!s_->inbox->submit(node)) {
        delete node;
        throw InvalidStateError("call_soon_threadsafe: event loop is closed");
    }
}

LoopHandle Loop::handle() const { return LoopHandle(s_->inbox); }

// ---- the fiber layer's seam ---------------------------------------------------------

namespace detail {

void LoopSeam::post(Loop& loop, const ReadyKind& kind, void* self, uintptr_t arg) {
    loop.s_->post(&kind, self, arg);
}

void* LoopSeam::take_next_ready(Loop& loop, const ReadyKind& kind) noexcept {
    return loop.s_->take_next(&kind);
}

void* LoopSeam::post_and_take_next(Loop& loop, const ReadyKind& kind, void* self) {
    Loop::State& s = *loop.s_;
    s.post(&kind, self, 0);
    return s.take_next(&kind);
}

void LoopSeam::add_timer(Loop& loop, TimerNode* node) {
    loop.check_open("add_timer");
    loop.s_->timers.push(node);
}

void LoopSeam::remove_timer(Loop& loop, TimerNode* node) noexcept {
    if (node->queued()) loop.s_->timers.remove(node);
}

LoopExtension* LoopSeam::extension_slot(Loop& loop, const void* key) noexcept {
    return loop.s_->extension_key == key ? loop.s_->extension.get() : nullptr;
}

void LoopSeam::set_extension_slot(Loop& loop, const void* key, std::unique_ptr<LoopExtension> extension) {
    if (loop.s_->extension) throw InvalidStateError("LoopSeam::set_extension: the slot is taken");
    loop.s_->extension = std::move(extension);
    loop.s_->extension_key = key;
}

}  // namespace detail

void Loop::add_signal_handler(int signo, std::function<void()> fn) {
    check_open("add_signal_handler");
    State* s = s_.get();
    if (!s->signals)
        s->signals = std::make_unique<detail::SignalSource>(*this, [s](int arrived) {
            s->ready.push({&State::signal_entry, s, uintptr_t(arrived)});
        });
    s->signals->add(signo, std::move(fn));
}

bool Loop::remove_signal_handler(int signo) noexcept {
    return s_->signals && s_->signals->remove(signo);
}

void LoopHandle::submit(detail::SubmitNode* node) {
    if (!inbox_ || !inbox_->submit(node)) {
        delete node;
        throw InvalidStateError("call_soon_threadsafe: event loop is closed");
    }
}

void LoopHandle::stop() {
    detail::Inbox* inbox = inbox_.get();
    call_soon_threadsafe([inbox] { inbox->loop()->stop(); });
}

bool LoopHandle::is_closed() const noexcept { return !inbox_ || inbox_->closed(); }

}  // namespace weft
