// Loop: the turn (timers → ready → poll), the ready queue, I/O slots with generation
// tags, signal dispatch, close-time reporting and the exception handler.
#include <weft/loop.hpp>
#include <weft/io_watch.hpp>

#include "detail/block_alloc.hpp"
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "detail/inbox.hpp"
#include "detail/reactor.hpp"
#include "detail/signal_source.hpp"
#include "detail/timer_heap.hpp"
#include <weft/error.hpp>

namespace weft {

namespace detail {
void* CallbackNode::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void CallbackNode::operator delete(void* p) noexcept { detail::free_block(p); }
void* SubmitNode::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void SubmitNode::operator delete(void* p) noexcept { detail::free_block(p); }
}  // namespace detail

namespace {

thread_local Loop* t_running __attribute__((tls_model("initial-exec"))) = nullptr;  // see context.cpp

// Bumped in the child after every fork(). A loop remembers the value it was made under;
// a different one means it is a copy inherited from the parent.
std::atomic<uint64_t> g_fork_generation{0};

void on_fork_child() noexcept {
    g_fork_generation.fetch_add(1, std::memory_order_relaxed);
    t_running = nullptr;  // the forking thread's loop is the parent's: a new one may run
}

uint64_t fork_generation() noexcept {
    static const int registered = ::pthread_atfork(nullptr, nullptr, &on_fork_child);
    (void)registered;
    return g_fork_generation.load(std::memory_order_relaxed);
}

// A FIFO ring of ready entries; grows by doubling, never shrinks.
struct ReadyEntry {
    Loop::ReadyFn fn;
    void* self;
    uintptr_t arg;
};

class ReadyQueue {
public:
    bool empty() const noexcept { return head_ == tail_; }
    size_t size() const noexcept { return size_t(tail_ - head_); }
    void push(ReadyEntry e) {
        if (size() == capacity_) [[unlikely]] grow();
        ring_[tail_++ & mask_] = e;
    }
    ReadyEntry pop() noexcept { return ring_[head_++ & mask_]; }
    const ReadyEntry& front() const noexcept { return ring_[head_ & mask_]; }

private:
    // Out of line: it runs once per doubling, and every fiber wake-up goes through push().
    [[gnu::noinline]] void grow() {
        std::vector<ReadyEntry> bigger(ring_.empty() ? 64 : ring_.size() * 2);
        size_t n = size();
        for (size_t i = 0; i < n; ++i) bigger[i] = ring_[(head_ + i) & mask_];
        ring_.swap(bigger);
        capacity_ = ring_.size();
        mask_ = capacity_ - 1;
        head_ = 0;
        tail_ = n;
    }
    std::vector<ReadyEntry> ring_;
    size_t capacity_ = 0;  // ring_.size(), kept apart to spare push() a division
    size_t mask_ = 0;
    uint64_t head_ = 0, tail_ = 0;
};

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

}  // namespace

struct Loop::State {
    Loop* loop;
    std::unique_ptr<detail::Reactor> reactor = std::make_unique<detail::Reactor>();
    std::shared_ptr<detail::Inbox> inbox;
    detail::TimerHeap timers;
    ReadyQueue ready;
    std::deque<IoSlot> slots;          // deque: stable while a callback adds watches
    std::vector<uint32_t> free_slots;
    std::vector<uint32_t> slot_of_fd;  // fd -> slot index, kNoSlot if unwatched
    uint32_t dispatching = kNoSlot;    // slot whose callback is running
    bool free_after_dispatch = false;  // that slot was reset by its own callback
    std::unique_ptr<detail::SignalSource> signals;  // made by the first add_signal_handler
    ExceptionHandler exception_handler;
    std::unique_ptr<detail::LoopExtension> extension;  // the fiber runtime, if any
    bool running = false;
    bool stopping = false;
    bool debug = false;
    Duration slow_callback = std::chrono::milliseconds(100);
    std::thread::id owner = std::this_thread::get_id();  // the thread that runs the loop
    bool inbox_backlog = false;  // the last drain left submissions queued
    unsigned turns_without_poll = 0;
    size_t entries_without_poll = 0;
    size_t step_remaining = 0;  // entries of the ready step in progress not yet run
    bool forever = false;       // inside run_forever: turns may begin without the loop
    bool closed = false;
    // The loop's own reports (no exception handler set): at most kReportBurst per
    // kReportWindow reach stderr; the rest are counted and summarised with the next one
    // printed, or at close. Loop thread only.
    std::chrono::steady_clock::time_point report_window{};
    unsigned reports_in_window = 0;
    uint64_t reports_suppressed = 0;
    const uint64_t born_in = fork_generation();
    static constexpr int kPollCapacity = 256;
    detail::ReactorEvent events[kPollCapacity];

    bool inherited() const noexcept {
        return born_in != g_fork_generation.load(std::memory_order_relaxed);
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

    void turn(bool may_block);
    bool begin_step_early() noexcept;
    // post(), take_next_ready() and their sum (a yield) share these, inlined: every fiber
    // wake-up and hand-off comes through here.
    [[gnu::always_inline]] void post(ReadyFn fn, void* self, uintptr_t arg) {
        if (closed || debug) [[unlikely]] {
            loop->check_open("post");
            loop->check_thread("post");
        }
        ready.push({fn, self, arg});
    }
    [[gnu::always_inline]] void* take_next(ReadyFn fn) noexcept {
        if (step_remaining == 0 && !begin_step_early()) return nullptr;
        // debug mode never starts a step early, but may be switched on inside one
        if (debug || ready.empty() || ready.front().fn != fn) return nullptr;
        --step_remaining;
        return ready.pop().self;
    }
    void run_due_timers();
    void run_ready();
    void run_timed(const ReadyEntry& e);
    std::string describe_entry(const ReadyEntry& e);
    void poll(bool may_block);
    void drain_inbox();
    void on_io_event(uint64_t token, uint32_t events);
    uint32_t allocate_slot(int fd);
    void free_slot(uint32_t index) noexcept;
    void release_slot(uint32_t index) noexcept;

    static void run_callback(void* node, uintptr_t state);
    static void run_submission(void* node, uintptr_t state);
    static void dispatch_io(void* state, uintptr_t token);
    static void dispatch_signal(void* state, uintptr_t signo);
    static void fire_timer_callback(detail::TimerNode* timer);
};

std::string describe(const std::source_location& where) {
    const char* file = where.file_name();
    for (const char* p = file; *p; ++p)
        if (*p == '/') file = p + 1;
    return std::string(file) + ":" + std::to_string(where.line()) + " (" +
           where.function_name() + ")";
}

// ---- the turn ---------------------------------------------------------------------

void Loop::State::turn(bool may_block) {
    run_due_timers();
    run_ready();
    poll(may_block);
}

// A fiber suspends at the end of a ready step. If the loop's next turn would fire no
// timer, skip its poll (within the same budget poll() keeps) and find nothing from other
// threads, that turn would only start the next step: start it here instead, and the
// fiber can hand the thread to the step's first fiber without a round trip through the
// loop's stack. run_ready() carries on with this step when the thread comes back.
bool Loop::State::begin_step_early() noexcept {
    if (!forever || stopping || debug || ready.empty() || inbox_backlog) return false;
    if (turns_without_poll >= kMaxTurnsWithoutPoll || entries_without_poll >= kMaxEntriesWithoutPoll)
        return false;
    if (inherited() || inbox->maybe_pending()) return false;
    if (const detail::TimerNode* t = timers.top(); t && t->deadline <= Clock::now()) return false;
    ++turns_without_poll;
    entries_without_poll += ready.size();
    step_remaining = ready.size();
    return true;
}

void Loop::State::run_due_timers() {
    if (timers.empty()) return;
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
        ReadyEntry e = ready.pop();
        if (debug) {
            run_timed(e);
            continue;
        }
        try {
            e.fn(e.self, e.arg);
        } catch (...) {
            report("Exception in ready entry", "");
        }
    }
}

// Debug mode: run one entry and report it if it held the loop too long.
void Loop::State::run_timed(const ReadyEntry& e) {
    std::string what = describe_entry(e);
    TimePoint start = Clock::now();
    try {
        e.fn(e.self, e.arg);
    } catch (...) {
        report("Exception in ready entry", what);
    }
    Duration took = Clock::now() - start;
    if (took < slow_callback) return;
    std::string where;
    if (extension && e.fn != &run_callback && e.fn != &run_submission && e.fn != &dispatch_io &&
        e.fn != &dispatch_signal)
        where = extension->locate_entry(e.fn, e.self);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", std::chrono::duration<double>(took).count());
    loop->call_exception_handler({"Executing " + what + " took " + secs + " seconds", nullptr,
                                  where.empty() ? what : where});
}

std::string Loop::State::describe_entry(const ReadyEntry& e) {
    if (e.fn == &run_callback)
        return "callback " + describe(static_cast<detail::CallbackNode*>(e.self)->where());
    if (e.fn == &run_submission)
        return "callback " + describe(static_cast<detail::SubmitNode*>(e.self)->where());
    if (e.fn == &dispatch_io) return "I/O callback (fd " + std::to_string(slots[uint32_t(e.arg)].fd) + ")";
    if (e.fn == &dispatch_signal) return "signal handler " + std::to_string(e.arg);
    return extension ? extension->describe_entry(e.fn, e.self) : "ready entry";
}

void Loop::State::poll(bool may_block) {
    int timeout_ms = -1;
    if (!may_block || !ready.empty() || stopping || inbox_backlog) {
        timeout_ms = 0;
    } else if (const detail::TimerNode* t = timers.top()) {
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(t->deadline - Clock::now());
        timeout_ms = wait.count() <= 0 ? 0 : wait.count() > INT_MAX ? INT_MAX : int(wait.count());
    }
    // While work stays ready, a look at the OS is needed only now and then: skipping the
    // syscall for a bounded number of turns keeps busy fibers fast without starving I/O.
    if (timeout_ms == 0 && may_block && !ready.empty() && turns_without_poll < kMaxTurnsWithoutPoll &&
        entries_without_poll < kMaxEntriesWithoutPoll) {
        ++turns_without_poll;
        if (inbox_backlog || inbox->maybe_pending()) drain_inbox();
        return;
    }
    turns_without_poll = 0;
    entries_without_poll = 0;
    int n = reactor->poll(timeout_ms, events, kPollCapacity);
    for (int i = 0; i < n; ++i) on_io_event(events[i].token, events[i].events);
    drain_inbox();
}

void Loop::State::drain_inbox() {
    // Bounded, so producers that never pause cannot keep the loop from running callbacks.
    inbox_backlog = inbox->drain(
        [this](detail::SubmitNode* node) { ready.push({&run_submission, node, uintptr_t(this)}); },
        kMaxSubmissionsPerTurn);
}

// ---- ready entries ------------------------------------------------------------------

void Loop::State::run_callback(void* p, uintptr_t state) {
    auto* node = static_cast<detail::CallbackNode*>(p);
    if (!node->cancelled_) {
        try {
            node->invoke();
        } catch (...) {
            reinterpret_cast<State*>(state)->report("Exception in callback",
                                                    describe(node->where()));
        }
    }
    node->unref();
}

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

void Loop::State::run_submission(void* p, uintptr_t state) {
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
}

void Loop::State::dispatch_signal(void* p, uintptr_t signo) {
    static_cast<State*>(p)->signals->run(int(signo));
}

// ---- I/O slots --------------------------------------------------------------------

void Loop::State::on_io_event(uint64_t token, uint32_t events) {
    uint32_t index = uint32_t(token);
    if (index >= slots.size()) return;
    IoSlot& slot = slots[index];
    if (!slot.in_use || slot.gen != uint32_t(token >> 32)) return;  // stale: fd was reused
    slot.pending |= events;
    if (!slot.queued) {
        slot.queued = true;
        ready.push({&dispatch_io, this, uintptr_t(token)});
    }
}

void Loop::State::dispatch_io(void* p, uintptr_t token) {
    auto* s = static_cast<State*>(p);
    uint32_t index = uint32_t(token);
    IoSlot& slot = s->slots[index];
    if (!slot.in_use || slot.gen != uint32_t(uint64_t(token) >> 32)) return;
    slot.queued = false;
    uint32_t fresh = slot.pending & ~slot.ready & (slot.interest | kHangup | kError);
    // An edge for a direction still marked ready is not reported now; an edge-triggered
    // backend will not repeat it, so clear_ready() reports it then.
    slot.missed |= slot.pending & slot.ready & (kReadable | kWritable);
    slot.ready |= slot.pending;
    slot.pending = 0;
    if (fresh == 0) return;
    s->dispatching = index;
    try {
        slot.callback(fresh);
    } catch (...) {
        s->report("Exception in I/O callback", "fd " + std::to_string(slot.fd));
    }
    s->dispatching = kNoSlot;
    if (s->free_after_dispatch) {
        s->free_after_dispatch = false;
        s->release_slot(index);
    }
}

uint32_t Loop::State::allocate_slot(int fd) {
    if (fd < 0) throw SystemError(EBADF, "IoWatch(fd=" + std::to_string(fd) + ")");
    if (size_t(fd) >= slot_of_fd.size()) slot_of_fd.resize(size_t(fd) * 2 + 16, kNoSlot);
    if (slot_of_fd[size_t(fd)] != kNoSlot)
        throw SystemError(EEXIST, "IoWatch(fd=" + std::to_string(fd) +
                                      "): fd is already watched by this loop");
    uint32_t index;
    if (!free_slots.empty()) {
        index = free_slots.back();
        free_slots.pop_back();
    } else {
        index = uint32_t(slots.size());
        slots.emplace_back();
    }
    slots[index].fd = fd;
    slots[index].in_use = true;
    slot_of_fd[size_t(fd)] = index;
    return index;
}

// Unregister now; keep the callback alive if it is the one running.
void Loop::State::free_slot(uint32_t index) noexcept {
    IoSlot& slot = slots[index];
    // In a fork() child the poller is the parent's: unregistering would deafen the parent.
    if (reactor && !inherited()) reactor->remove(slot.fd);
    slot_of_fd[size_t(slot.fd)] = kNoSlot;
    slot.in_use = false;
    slot.owner = nullptr;
    ++slot.gen;
    if (index == dispatching)
        free_after_dispatch = true;
    else
        release_slot(index);
}

void Loop::State::release_slot(uint32_t index) noexcept {
    IoSlot& slot = slots[index];
    slot.callback = nullptr;
    slot.fd = -1;
    slot.interest = slot.ready = slot.pending = slot.missed = 0;
    slot.queued = false;
    free_slots.push_back(index);
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

void Loop::close() {
    if (s_->closed) return;
    State& s = *s_;
    if (s.inherited()) {
        // A fork() child's copy: the poller's registrations and the executor's threads
        // belong to the parent, so nothing is unregistered, unwound or joined. The tasks
        // and the fiber runtime are abandoned (the child's memory only).
        s.closed = true;
        s.running = false;
        for (IoSlot& slot : s.slots)
            if (slot.in_use && slot.owner) slot.owner->loop_ = nullptr;
        (void)s.extension.release();
        (void)s.signals.release();  // the routes and the pipe stay as the parent left them
        // Not even closed: a kqueue is not inherited at all, so its number may already
        // name another fd of the child's (its new loop's kqueue, say).
        (void)s.reactor.release();
        return;
    }
    if (s_->running) throw InvalidStateError("close: cannot close a running event loop");
    if (s.extension) s.extension->on_close(*this);  // may still run fibers to unwind them
    s.closed = true;

    // Work that will never run: count it and name the first few, then report once.
    size_t never_ran = 0;
    std::string sources;
    auto note = [&](const std::string& where) {
        if (++never_ran <= 5) sources += (sources.empty() ? "" : "; ") + where;
    };
    s.inbox->close();  // no producer is in flight after this: busy states resolve quickly
    while (s.inbox->drain([&](detail::SubmitNode* node) {
        if (node->worth_reporting()) note(describe(node->where()));
        node->release();
    }))
        std::this_thread::yield();
    while (!s.ready.empty()) {
        ReadyEntry e = s.ready.pop();
        if (e.fn == &State::run_callback) {
            auto* node = static_cast<detail::CallbackNode*>(e.self);
            if (!node->cancelled_) note(describe(node->where()));
            node->unref();
        } else if (e.fn == &State::run_submission) {
            auto* node = static_cast<detail::SubmitNode*>(e.self);
            if (node->worth_reporting()) note(describe(node->where()));
            node->release();
        } else if (e.fn != &State::dispatch_io && e.fn != &State::dispatch_signal) {
            note("a low-level ready entry");
        }
    }
    while (!s.timers.empty()) {
        detail::TimerNode* t = s.timers.pop();
        if (t->fire == &State::fire_timer_callback) {
            auto* node = static_cast<detail::CallbackNode*>(t);
            node->loop_ = nullptr;
            note(describe(node->where()));
            node->unref();
        } else {
            note("a low-level timer");
        }
    }
    for (uint32_t i = 0; i < s.slots.size(); ++i) {
        if (!s.slots[i].in_use) continue;
        if (s.slots[i].owner) s.slots[i].owner->loop_ = nullptr;
        s.free_slot(i);
    }
    s.signals.reset();  // restores the signals' dispositions and closes the pipe
    s.reactor.reset();
    if (never_ran > 0)
        call_exception_handler({"Loop closed with " + std::to_string(never_ran) +
                                    " scheduled callback(s) that never ran",
                                nullptr, sources + (never_ran > 5 ? "; ..." : "")});
    s.report_suppressed();
}

detail::LoopExtension* Loop::extension() const noexcept { return s_->extension.get(); }
void Loop::set_extension(std::unique_ptr<detail::LoopExtension> extension) {
    s_->extension = std::move(extension);
}

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
    check_accepts(node, "call_soon");
    s_->ready.push({&State::run_callback, node, uintptr_t(s_.get())});
}

void Loop::schedule_timer(detail::CallbackNode* node) {
    check_accepts(node, "call_at");
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

void Loop::post(ReadyFn fn, void* self, uintptr_t arg) { s_->post(fn, self, arg); }
void* Loop::take_next_ready(ReadyFn fn) noexcept { return s_->take_next(fn); }
void* Loop::post_and_take_next(ReadyFn fn, void* self) {
    State& s = *s_;
    s.post(fn, self, 0);
    return s.take_next(fn);
}

void Loop::add_timer(detail::TimerNode* node) {
    check_open("add_timer");
    s_->timers.push(node);
}
void Loop::remove_timer(detail::TimerNode* node) noexcept {
    if (node->queued()) s_->timers.remove(node);
}

void Loop::add_signal_handler(int signo, std::function<void()> fn) {
    check_open("add_signal_handler");
    State* s = s_.get();
    if (!s->signals)
        s->signals = std::make_unique<detail::SignalSource>(*this, [s](int arrived) {
            s->ready.push({&State::dispatch_signal, s, uintptr_t(arrived)});
        });
    s->signals->add(signo, std::move(fn));
}

bool Loop::remove_signal_handler(int signo) noexcept {
    return s_->signals && s_->signals->remove(signo);
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

// ---- Handle, LoopHandle, IoWatch --------------------------------------------------------

void Handle::cancel() noexcept {
    if (!node_ || node_->cancelled_) return;
    node_->cancelled_ = true;
    if (node_->queued() && node_->loop_) {
        node_->loop_->s_->timers.remove(node_);
        node_->loop_ = nullptr;
        node_->unref();  // the heap's reference
    }
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

IoWatch::IoWatch(Loop& loop, int fd, uint32_t interest, Callback callback) {
    loop.check_open("IoWatch");
    Loop::State& s = *loop.s_;
    s.check_not_inherited("IoWatch");
    uint32_t index = s.allocate_slot(fd);
    IoSlot& slot = s.slots[index];
    try {
        s.reactor->add(fd, interest, slot.token(index));
    } catch (...) {
        s.slot_of_fd[size_t(fd)] = kNoSlot;
        slot.in_use = false;
        s.release_slot(index);
        throw;
    }
    slot.interest = interest;
    slot.callback = std::move(callback);
    slot.owner = this;
    loop_ = &loop;
    slot_ = index;
}

IoWatch::IoWatch(IoWatch&& other) noexcept
    : loop_(std::exchange(other.loop_, nullptr)), slot_(other.slot_) {
    if (loop_) loop_->s_->slots[slot_].owner = this;
}

IoWatch& IoWatch::operator=(IoWatch&& other) noexcept {
    if (this != &other) {
        reset();
        loop_ = std::exchange(other.loop_, nullptr);
        slot_ = other.slot_;
        if (loop_) loop_->s_->slots[slot_].owner = this;
    }
    return *this;
}

void IoWatch::reset() noexcept {
    if (!loop_) return;
    loop_->s_->free_slot(slot_);
    loop_ = nullptr;
}

int IoWatch::fd() const noexcept { return loop_ ? loop_->s_->slots[slot_].fd : -1; }

uint32_t IoWatch::ready() const noexcept { return loop_ ? loop_->s_->slots[slot_].ready : 0; }

void IoWatch::clear_ready(uint32_t bits) {
    if (!loop_) throw InvalidStateError("IoWatch::clear_ready: not registered (loop closed?)");
    Loop::State& s = *loop_->s_;
    s.check_not_inherited("IoWatch::clear_ready");
    IoSlot& slot = s.slots[slot_];
    slot.ready &= ~bits;
    if (bits & (kReadable | kWritable)) s.reactor->rearm(slot.fd, bits);
    if (uint32_t owed = slot.missed & bits) {
        slot.missed &= ~owed;
        s.on_io_event(slot.token(slot_), owed);
    }
}

void IoWatch::set_interest(uint32_t interest) {
    if (!loop_) throw InvalidStateError("IoWatch::set_interest: not registered (loop closed?)");
    loop_->s_->check_not_inherited("IoWatch::set_interest");
    IoSlot& slot = loop_->s_->slots[slot_];
    loop_->s_->reactor->modify(slot.fd, interest, slot.token(slot_));
    slot.interest = interest;
    slot.ready = slot.missed = 0;
}

}  // namespace weft
