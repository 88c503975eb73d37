// The wait list shared by every primitive, and the primitives' hand-off rules.
#include <weft/sync.hpp>

#include <string>

#include "fiber/detail/fiber.hpp"
#include <weft/task.hpp>

namespace weft {

namespace detail {

void WaitList::link(Node& n) noexcept {
    n.prev = tail_;
    n.next = nullptr;
    (tail_ ? tail_->next : head_) = &n;
    tail_ = &n;
    n.linked = true;
    ++size_;
}

void WaitList::unlink(Node& n) noexcept {
    if (!n.linked) return;
    (n.prev ? n.prev->next : head_) = n.next;
    (n.next ? n.next->prev : tail_) = n.prev;
    n.prev = n.next = nullptr;
    n.linked = false;
    --size_;
}

void WaitList::wait(Node& node, const char* what) {
    node.fiber = require_fiber(what);
    node.notified = false;
    link(node);
    const WaitRecord waiting{what, this};
    WaitScope scope(node.fiber, waiting);
    try {
        while (!node.notified) suspend(node.fiber);
    } catch (...) {
        unlink(node);
        throw;  // node.notified tells the caller whether a notification was consumed
    }
}

bool WaitList::notify_one() noexcept {
    Node* n = head_;
    if (!n) return false;
    unlink(*n);
    n->notified = true;
    wake(n->fiber);
    return true;
}

void WaitList::notify_all() noexcept {
    while (notify_one()) {
    }
}

}  // namespace detail

void Event::set() noexcept {
    set_ = true;
    waiters_.notify_all();
}

void Event::wait() {
    if (set_) return;
    detail::WaitList::Node node;  // notified: it was set, even if cleared again since
    waiters_.wait(node, "Event::wait");
}

void Lock::acquire() {
    if (!locked_ && waiters_.empty()) {
        locked_ = true;
        return;
    }
    detail::WaitList::Node node;
    try {
        waiters_.wait(node, "Lock::acquire");  // notified = the lock was handed to us
    } catch (const Cancelled&) {
        if (node.notified) release();  // handed over, then cancelled: pass it on
        throw;
    }
}

void Lock::release() {
    if (!locked_) throw InvalidStateError("Lock::release: the lock is not acquired");
    if (!waiters_.notify_one()) locked_ = false;  // else: ownership handed to the next
}

void Semaphore::acquire() {
    if (value_ > 0 && waiters_.empty()) {
        --value_;
        return;
    }
    detail::WaitList::Node node;
    try {
        waiters_.wait(node, "Semaphore::acquire");  // notified = a unit was handed to us
    } catch (const Cancelled&) {
        if (node.notified) Semaphore::release();
        throw;
    }
}

void Semaphore::release() {
    if (!waiters_.notify_one()) ++value_;
}

void BoundedSemaphore::release() {
    if (value_ >= bound_ && waiters_.empty())
        throw Error(std::errc::invalid_argument,
                    "BoundedSemaphore released too many times");
    Semaphore::release();
}

void Condition::wait() {
    if (!lock_->locked()) throw InvalidStateError("Condition::wait: the lock is not acquired");
    lock_->release();
    detail::WaitList::Node node;
    std::exception_ptr cancelled;
    try {
        waiters_.wait(node, "Condition::wait");
    } catch (const Cancelled&) {
        if (node.notified) waiters_.notify_one();  // do not swallow someone's notify
        cancelled = std::current_exception();
    }
    {
        DeferCancellation defer;  // the caller must get the lock back, cancelled or not
        lock_->acquire();
    }
    if (cancelled) std::rethrow_exception(cancelled);
}

void Condition::notify(size_t n) {
    if (!lock_->locked()) throw InvalidStateError("Condition::notify: the lock is not acquired");
    for (size_t i = 0; i < n && waiters_.notify_one(); ++i) {
    }
}

void Condition::notify_all() {
    if (!lock_->locked()) throw InvalidStateError("Condition::notify_all: the lock is not acquired");
    waiters_.notify_all();
}

Barrier::Barrier(size_t parties) : parties_(parties) {
    if (parties == 0)
        throw Error(std::errc::invalid_argument, "Barrier: parties must be > 0");
}

size_t Barrier::wait() {
    size_t index = arrived_++;
    if (arrived_ == parties_) {
        arrived_ = 0;  // the next cycle starts empty
        waiters_.notify_all();
        return index;
    }
    detail::WaitList::Node node;
    try {
        waiters_.wait(node, "Barrier::wait");
    } catch (const Cancelled&) {
        if (!node.notified) --arrived_;  // left before the barrier filled
        throw;
    }
    return index;
}

}  // namespace weft
