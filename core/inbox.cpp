// Submission queue protocol: a producer pushes, which fails once the loop has sealed the
// queue (close), and wakes the reactor only if the loop may be asleep and no wake-up is on
// its way (see inbox.hpp: the loop keeps wake_pending_ set while it is awake). Only that
// rare wake-up announces itself (wakers_), so close() can wait until no producer is about
// to touch the reactor; the push itself needs no count, because the seal and the push
// meet in one atomic word: a node is either drained by close's final drain or refused.
#include "core/detail/inbox.hpp"

#include <thread>

namespace weft::detail {

bool Inbox::submit(SubmitNode* node) noexcept {
    if (!queue_.push(node)) return false;
    // A load first: while the loop is awake the flag stays set, and the line it sits on
    // stays shared instead of bouncing between the producers and the loop.
    if (!wake_pending_.load(std::memory_order_seq_cst)) [[unlikely]] wake();
    return true;
}

void Inbox::wake() noexcept {
    // Dekker with close(): a waker announces itself, then looks at the seal; close() seals,
    // then waits for the wakers it sees. So the reactor is never woken once close() has
    // returned, and the loop may destroy it.
    wakers_.fetch_add(1, std::memory_order_seq_cst);
    if (!queue_.sealed() && !wake_pending_.exchange(true, std::memory_order_seq_cst)) {
        wakeups_.fetch_add(1, std::memory_order_relaxed);
        reactor_->wake();
    }
    wakers_.fetch_sub(1, std::memory_order_release);
}

void Inbox::close() noexcept {
    queue_.seal();  // pushes fail from here on; drain() still hands out the ones before
    // seq_cst, not acquire: this load must not be ordered before the seal above, or a
    // waker that saw the queue open could still be waking (weakly ordered CPUs).
    while (wakers_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

}  // namespace weft::detail
