// FutureBase: completion, waiters, done callbacks, and the never-retrieved report.
#include <weft/future.hpp>

#include "core/detail/block_alloc.hpp"

#include <new>
#include <optional>

#include "fiber/detail/fiber.hpp"
#include <weft/task.hpp>

namespace weft::detail {

void* FutureBase::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void FutureBase::operator delete(void* p) noexcept { detail::free_block(p); }

FutureBase::~FutureBase() = default;

void FutureBase::unref() noexcept {
    if (--refs_ != 0) return;
    if (status_ == Status::done && error_ && !retrieved_)
        loop_->call_exception_handler(
            {describe() + " exception was never retrieved", error_, describe()});
    else if (status_ == Status::pending && !awaited_ && loop_->get_debug())
        loop_->call_exception_handler(
            {describe() + " was destroyed while pending and was never awaited", nullptr, describe()});
    delete this;
}

void link_waiter(FutureBase& f, Waiter& w) noexcept {
    f.awaited_ = true;
    w.prev = nullptr;
    w.next = f.waiters_;
    if (f.waiters_) f.waiters_->prev = &w;
    f.waiters_ = &w;
}

void unlink_waiter(FutureBase& f, Waiter& w) noexcept {
    if (w.prev)
        w.prev->next = w.next;
    else if (f.waiters_ == &w)
        f.waiters_ = w.next;
    else
        return;  // not linked
    if (w.next) w.next->prev = w.prev;
    w.prev = w.next = nullptr;
}

void FutureBase::check_pending(const char* what) const {
    loop_->check_thread(what);  // debug mode: before any state changes (wake cannot throw)
    if (status_ != Status::pending)
        throw InvalidStateError(std::string(what) + ": " + describe() + " is already " +
                                (cancelled() ? "cancelled" : "done"));
}

bool FutureBase::cancel(std::string message) {
    loop_->check_thread("Future::cancel");
    if (done()) return false;
    set_cancelled(std::move(message));
    return true;
}

void FutureBase::set_exception(std::exception_ptr error) {
    check_pending("Future::set_exception");
    if (!error) throw InvalidStateError("Future::set_exception: null exception");
    error_ = std::move(error);
    finish(Status::done);
}

std::exception_ptr FutureBase::exception() {
    if (status_ == Status::pending)
        throw InvalidStateError(describe() + ": exception() of a pending future");
    if (status_ == Status::cancelled) throw Cancelled(cancel_message_);
    retrieved_ = true;
    return error_;
}

void FutureBase::check_result() {
    if (status_ == Status::pending) throw InvalidStateError(describe() + ": result is not set yet");
    if (status_ == Status::cancelled) throw Cancelled(cancel_message_);
    retrieved_ = true;
    if (error_) std::rethrow_exception(error_);
}

void FutureBase::finish(Status status) {
    status_ = status;
    // Waiters first, oldest first: their fibers resume in the order they started waiting.
    Waiter* w = waiters_;
    while (w && w->next) w = w->next;
    while (w) {
        Waiter* prev = w->prev;
        w->prev = w->next = nullptr;
        if (w->notify)
            w->notify(w);
        else
            wake(w->fiber);
        w = prev;
    }
    waiters_ = nullptr;
    if (callbacks_.empty()) return;
    for (auto& [id, fn] : callbacks_)
        loop_->call_soon([self = Ref<FutureBase>(this), fn = std::move(fn)] { fn(); });
    callbacks_.clear();
}

uint64_t FutureBase::add_done_callback(std::function<void()> fn) {
    awaited_ = true;
    uint64_t id = next_callback_id_++;
    if (done())
        loop_->call_soon([self = Ref<FutureBase>(this), fn = std::move(fn)] { fn(); });
    else
        callbacks_.emplace_back(id, std::move(fn));
    return id;
}

size_t FutureBase::remove_done_callback(uint64_t id) noexcept {
    size_t before = callbacks_.size();
    std::erase_if(callbacks_, [id](const auto& c) { return c.first == id; });
    return before - callbacks_.size();
}

bool FutureBase::wait(const char* what, const TimePoint* deadline, bool cancel_inner) {
    awaited_ = true;
    if (done()) return true;
    Fiber* f = require_fiber(what);
    Ref<FutureBase> keep(this);
    Waiter w;
    w.fiber = f;
    link_waiter(*this, w);
    struct Unlink {  // on every way out, also if setting up the timer throws
        FutureBase& future;
        Waiter& waiter;
        ~Unlink() { unlink_waiter(future, waiter); }
    } unlink{*this, w};
    const WaitRecord waiting{what, this, deadline ? deadline->time_since_epoch().count() : -1};
    WaitScope scope(f, waiting);
    try {
        std::optional<WakeTimer> timer;
        if (deadline) timer.emplace(f, *deadline);
        while (!done() && !(timer && timer->fired())) suspend(f);
    } catch (const Cancelled& c) {
        if (!cancel_inner) throw;
        // asyncio: the awaited thing is cancelled too, and the awaiter finishes only once
        // it has finished cancelling (its clean-up may still use the awaiter's frame).
        unlink_waiter(*this, w);
        cancel(c.message());
        DeferCancellation defer;
        wait(what, nullptr, false);
        throw;
    }
    return done();
}

}  // namespace weft::detail
