// asyncio's synchronisation primitives for fibers of one loop: Event, Lock, Semaphore,
// BoundedSemaphore, Condition, Barrier. Waiters wake in FIFO order; a waiter cancelled
// mid-wait leaves the primitive consistent (a hand-off it was given passes to the next).
// Loop thread only, like everything on a loop.
#pragma once

#include <cstddef>

#include <weft/error.hpp>

namespace weft {

namespace detail {

struct Fiber;

// A FIFO of fibers waiting on a primitive; nodes live on the waiters' stacks.
class WaitList {
public:
    struct Node {
        Node* prev = nullptr;
        Node* next = nullptr;
        Fiber* fiber = nullptr;
        bool notified = false;
        bool linked = false;
    };

    bool empty() const noexcept { return head_ == nullptr; }
    size_t size() const noexcept { return size_; }

    // Suspends the calling fiber until notified. On Cancelled the node is unlinked; if it
    // had been notified, handoff decides: false passes the notification to the next
    // waiter, true returns to the caller as "notified" through node.notified.
    void wait(Node& node, const char* what);
    bool notify_one() noexcept;  // false if nobody waits
    void notify_all() noexcept;

private:
    void link(Node& n) noexcept;
    void unlink(Node& n) noexcept;
    Node* head_ = nullptr;
    Node* tail_ = nullptr;
    size_t size_ = 0;
};

}  // namespace detail

// asyncio.Event.
class Event {
public:
    void set() noexcept;  // wakes every waiter
    void clear() noexcept { set_ = false; }
    bool is_set() const noexcept { return set_; }
    void wait();  // returns at once if set

private:
    bool set_ = false;
    detail::WaitList waiters_;
};

// asyncio.Lock: not re-entrant; FIFO hand-off. lock()/unlock() make it usable with
// std::lock_guard / std::unique_lock (acquire may suspend the calling fiber).
class Lock {
public:
    void acquire();
    void release();  // InvalidStateError if not locked
    bool locked() const noexcept { return locked_; }
    void lock() { acquire(); }
    void unlock() { release(); }

private:
    bool locked_ = false;
    detail::WaitList waiters_;
};

// asyncio.Semaphore.
class Semaphore {
public:
    explicit Semaphore(size_t value = 1) : value_(value) {}
    void acquire();
    void release();
    bool locked() const noexcept { return value_ == 0; }
    size_t value() const noexcept { return value_; }
    void lock() { acquire(); }
    void unlock() { release(); }

protected:
    size_t value_;
    detail::WaitList waiters_;
};

// asyncio.BoundedSemaphore: releasing more than acquired is an error (EINVAL).
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(size_t value = 1) : Semaphore(value), bound_(value) {}
    void release();
    void unlock() { release(); }

private:
    size_t bound_;
};

// asyncio.Condition over a Lock (its own, or one shared with others).
class Condition {
public:
    Condition() : lock_(&own_) {}
    explicit Condition(Lock& lock) : lock_(&lock) {}

    void acquire() { lock_->acquire(); }
    void release() { lock_->release(); }
    bool locked() const noexcept { return lock_->locked(); }
    void lock() { acquire(); }
    void unlock() { release(); }

    // Releases the lock, waits for notify, reacquires the lock — also when cancelled, as
    // asyncio does — then returns (or rethrows Cancelled). InvalidStateError unless locked.
    void wait();
    template <class Pred>
    void wait_for(Pred pred) {
        while (!pred()) wait();
    }
    void notify(size_t n = 1);  // InvalidStateError unless locked
    void notify_all();

private:
    Lock own_;
    Lock* lock_;
    detail::WaitList waiters_;
};

// asyncio.Barrier: wait() returns once `parties` fibers are waiting; each gets a distinct
// index in [0, parties). A waiter cancelled before the barrier fills leaves it.
class Barrier {
public:
    explicit Barrier(size_t parties);
    size_t wait();
    size_t parties() const noexcept { return parties_; }
    size_t n_waiting() const noexcept { return arrived_; }

private:
    size_t parties_;
    size_t arrived_ = 0;
    detail::WaitList waiters_;
};

}  // namespace weft
