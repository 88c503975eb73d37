// The non-template halves of the combinators: waiting on many futures at once, gather's
// failure rule, and the timeout scope's cancel-and-convert.
#include <weft/combinators.hpp>

#include <optional>
#include <string>

#include "fiber/detail/fiber.hpp"
#include "core/detail/loop_seam.hpp"
#include <weft/task.hpp>

namespace weft::detail {

namespace {
// gather's bookkeeping: one waiter per child, registered once; completions are counted
// and the gathering fiber is woken only when it has something to do. O(n) in all.
struct Gather {
    Fiber* fiber = nullptr;
    size_t remaining = 0;
    bool return_exceptions = false;
    std::vector<size_t> completed;  // indices in completion order, not yet looked at
};

struct GatherWaiter : Waiter {
    Gather* gather = nullptr;
    size_t index = 0;
    FutureBase* future = nullptr;
};

bool failed(const FutureBase* f) { return f->cancelled() || f->has_exception(); }

// gather raises `first`'s failure. The other children, done or not, have nobody left to
// report their outcome to: as asyncio's _done_callback, their exceptions count as retrieved.
[[noreturn]] void raise_failure(const std::vector<FutureBase*>& fs, FutureBase* first) {
    for (FutureBase* f : fs) f->mark_retrieved();
    first->check_result();
    __builtin_unreachable();  // a failed future's check_result always throws
}

void on_child_done(Waiter* w) {
    auto* gw = static_cast<GatherWaiter*>(w);
    Gather& g = *gw->gather;
    --g.remaining;
    g.completed.push_back(gw->index);
    if (g.remaining == 0 || (!g.return_exceptions && failed(gw->future))) wake(g.fiber);
}
}  // namespace

void gather_wait(const std::vector<FutureBase*>& fs, bool return_exceptions) {
    // Children already done count first, in input order.
    for (FutureBase* f : fs)
        if (f->done() && !return_exceptions && failed(f)) raise_failure(fs, f);
    Gather g;
    g.return_exceptions = return_exceptions;
    std::vector<GatherWaiter> waiters(fs.size());
    for (size_t i = 0; i < fs.size(); ++i) {
        if (fs[i]->done()) continue;
        if (!g.fiber) g.fiber = require_fiber("gather");
        GatherWaiter& w = waiters[i];
        w.fiber = g.fiber;
        w.notify = &on_child_done;
        w.gather = &g;
        w.index = i;
        w.future = fs[i];
        link_waiter(*fs[i], w);
        ++g.remaining;
    }
    struct Unlink {  // on every way out: no waiter may stay linked to a child
        const std::vector<FutureBase*>& fs;
        std::vector<GatherWaiter>& ws;
        ~Unlink() {
            for (size_t i = 0; i < fs.size(); ++i) unlink_waiter(*fs[i], ws[i]);
        }
    } unlink{fs, waiters};
    std::vector<Ref<FutureBase>> keep(fs.begin(), fs.end());
    const WaitRecord waiting{"gather", &g};
    std::optional<WaitScope> scope;  // no fiber: every child had finished already
    if (g.fiber) scope.emplace(g.fiber, waiting);
    while (g.remaining > 0) {
        try {
            suspend(g.fiber);
        } catch (const Cancelled& c) {
            // asyncio: cancel the children, and finish only once they have finished.
            for (FutureBase* f : fs) f->cancel(c.message());
            DeferCancellation defer;
            for (FutureBase* f : fs) f->wait("gather", nullptr, false);
            throw;
        }
        // The first failure in completion order propagates; the others keep running.
        if (!return_exceptions)
            for (size_t i : g.completed)
                if (failed(fs[i])) raise_failure(fs, fs[i]);
        g.completed.clear();
    }
}

struct CompletionOrder::Node : Waiter {
    CompletionOrder* owner = nullptr;
    size_t index = 0;
};

namespace {
void on_finished(Waiter* w) {
    auto* n = static_cast<CompletionOrder::Node*>(w);
    n->owner->finished_push(n->index);
}
}  // namespace

CompletionOrder::CompletionOrder(std::vector<FutureBase*> futures)
    : futures_(std::move(futures)), keep_(futures_.begin(), futures_.end()),
      nodes_(new Node[futures_.size()]) {
    for (size_t i = 0; i < futures_.size(); ++i) {
        if (futures_[i]->done()) {
            finished_.push_back(i);
            continue;
        }
        nodes_[i].owner = this;
        nodes_[i].index = i;
        nodes_[i].notify = &on_finished;
        link_waiter(*futures_[i], nodes_[i]);
    }
}

CompletionOrder::~CompletionOrder() {
    for (size_t i = 0; i < futures_.size(); ++i) unlink_waiter(*futures_[i], nodes_[i]);
}

void CompletionOrder::finished_push(size_t index) {
    finished_.push_back(index);
    if (waiting_) wake(waiting_);
}

size_t CompletionOrder::next(const TimePoint* deadline) {
    if (returned_ == futures_.size()) return kAllReturned;
    if (returned_ == finished_.size()) {
        Fiber* f = require_fiber("as_completed / wait");
        waiting_ = f;
        struct Clear {
            Fiber*& w;
            ~Clear() { w = nullptr; }
        } clear{waiting_};
        std::optional<WakeTimer> timer;
        if (deadline) timer.emplace(f, *deadline);
        const WaitRecord waiting{"as_completed / wait", this,
                                 deadline ? deadline->time_since_epoch().count() : -1};
        WaitScope scope(f, waiting);
        while (returned_ == finished_.size()) {
            if (timer && timer->fired()) return kTimedOut;
            suspend(f);
        }
    }
    return finished_[returned_++];
}

TimeoutScope::TimeoutScope(std::optional<TimePoint> deadline)
    : deadline_(deadline),
      fiber_(require_fiber("timeout")),
      task_(fiber_->task),
      cancelling_at_entry_(task_->cancelling()) {
    timer_.scope = this;
    timer_.fire = &on_deadline;
    if (deadline_) {
        timer_.deadline = *deadline_;
        detail::LoopSeam::add_timer(*fiber_->loop, &timer_);
        armed_ = true;
    }
}

void TimeoutScope::reschedule(std::optional<TimePoint> deadline) {
    if (expired_) throw InvalidStateError("Timeout::reschedule: the timeout has already expired");
    if (armed_) detail::LoopSeam::remove_timer(*fiber_->loop, &timer_);
    armed_ = false;
    deadline_ = deadline;
    if (deadline_) {
        timer_.deadline = *deadline_;
        detail::LoopSeam::add_timer(*fiber_->loop, &timer_);
        armed_ = true;
    }
}

void TimeoutScope::on_deadline(TimerNode* t) {
    TimeoutScope* self = static_cast<Timer*>(t)->scope;
    self->armed_ = false;
    self->expired_ = true;
    self->task_->cancel("timeout");
}

bool TimeoutScope::owns_cancellation() noexcept {
    if (!expired_ || settled_) return false;
    settled_ = true;
    return task_->uncancel() <= cancelling_at_entry_;
}

TimeoutScope::~TimeoutScope() {
    if (armed_) detail::LoopSeam::remove_timer(*fiber_->loop, &timer_);
    // Expired, but fn finished before the cancel landed: take the request back, and the
    // pending cancel with it unless someone else asked for one too.
    if (expired_ && !settled_ && task_->uncancel() <= cancelling_at_entry_)
        fiber_->cancel_pending = false;
}

void TimeoutScope::throw_timeout() const {
    throw TimeoutError("timeout: deadline passed");
}

}  // namespace weft::detail
