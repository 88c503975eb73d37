// Submission queue protocol: a producer announces itself (producers_), checks closed_,
// pushes, and wakes the reactor if the loop may be asleep and no wake-up is on its way
// (see inbox.hpp: the loop keeps wake_pending_ set while it is awake). close() sets
// closed_ and waits until no producer is in flight, so nothing lands after the final drain
// and the reactor is never woken after it is gone.
#include "core/detail/inbox.hpp"

#include <thread>

namespace weft::detail {

bool Inbox::submit(SubmitNode* node) noexcept {
    producers_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst)) {
        producers_.fetch_sub(1, std::memory_order_release);
        return false;
    }
    queue_.push(node);
    // A load first: while the loop is awake the flag stays set, and the line it sits on
    // stays shared instead of bouncing between the producers and the loop.
    if (!wake_pending_.load(std::memory_order_seq_cst) &&
        !wake_pending_.exchange(true, std::memory_order_seq_cst)) {
        wakeups_.fetch_add(1, std::memory_order_relaxed);
        reactor_->wake();
    }
    producers_.fetch_sub(1, std::memory_order_release);
    return true;
}

void Inbox::close() noexcept {
    closed_.store(true, std::memory_order_seq_cst);
    // seq_cst, not acquire: this load must not be ordered before the store above, or a
    // producer that saw closed_ == false could still be pushing (weakly ordered CPUs).
    while (producers_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

}  // namespace weft::detail
