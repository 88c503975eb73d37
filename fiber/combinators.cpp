// The non-template halves of the combinators: waiting on many futures at once, gather's
// failure rule, and the timeout scope's cancel-and-convert.
#include <weft/combinators.hpp>

#include <string>

#include "detail/fiber.hpp"

namespace weft::detail {

void wait_any(const std::vector<FutureBase*>& fs, const TimePoint* deadline, const char* what) {
    for (FutureBase* f : fs)
        if (f->done()) return;
    Fiber* fiber = require_fiber(what);
    std::vector<Waiter> waiters(fs.size());
    for (size_t i = 0; i < fs.size(); ++i) {
        waiters[i].fiber = fiber;
        link_waiter(*fs[i], waiters[i]);
    }
    struct Unlink {  // on every exit, including Cancelled
        const std::vector<FutureBase*>& fs;
        std::vector<Waiter>& ws;
        ~Unlink() {
            for (size_t i = 0; i < fs.size(); ++i) unlink_waiter(*fs[i], ws[i]);
        }
    } unlink{fs, waiters};
    std::optional<WakeTimer> timer;
    if (deadline) timer.emplace(fiber, *deadline);
    auto any_done = [&] {
        for (FutureBase* f : fs)
            if (f->done()) return true;
        return false;
    };
    while (!any_done() && !(timer && timer->fired())) suspend(fiber);
}

void gather_wait(const std::vector<FutureBase*>& fs, bool return_exceptions) {
    std::vector<bool> seen(fs.size(), false);
    std::vector<Ref<FutureBase>> keep(fs.begin(), fs.end());
    for (;;) {
        bool all_done = true;
        for (size_t i = 0; i < fs.size(); ++i) {
            if (!fs[i]->done()) {
                all_done = false;
                continue;
            }
            if (seen[i]) continue;
            seen[i] = true;
            // The first failure seen (completion order, then input order) propagates.
            if (!return_exceptions && (fs[i]->cancelled() || fs[i]->has_exception()))
                fs[i]->check_result();
        }
        if (all_done) return;
        std::vector<FutureBase*> pending;
        for (FutureBase* f : fs)
            if (!f->done()) pending.push_back(f);
        try {
            wait_any(pending, nullptr, "gather");
        } catch (const Cancelled& c) {
            for (FutureBase* f : pending) f->cancel(c.message());  // asyncio: cancel children
            throw;
        }
    }
}

TimeoutScope::TimeoutScope(TimePoint deadline)
    : fiber_(require_fiber("timeout")), deadline_(deadline) {
    timer_.scope = this;
    timer_.deadline = deadline;
    timer_.fire = &on_deadline;
    fiber_->loop->add_timer(&timer_);
}

void TimeoutScope::on_deadline(TimerNode* t) {
    TimeoutScope* self = static_cast<Timer*>(t)->scope;
    self->expired_ = true;
    self->we_cancelled_ = !self->fiber_->cancel_pending;
    self->fiber_->task->cancel("timeout");
}

TimeoutScope::~TimeoutScope() {
    fiber_->loop->remove_timer(&timer_);
    // Our cancel was never observed (fn finished first): take it back, as asyncio's
    // uncancel does, so it cannot hit an unrelated suspension later.
    if (we_cancelled_ && fiber_->cancel_pending) fiber_->cancel_pending = false;
}

void TimeoutScope::throw_timeout() const {
    throw TimeoutError("timeout: deadline passed");
}

}  // namespace weft::detail
