// The seam between a Loop and the fiber layer: what only fiber/ may do to a loop. Queue
// ready entries of its own kinds, hand the thread straight to the next fiber, keep
// intrusive timers, and keep its per-loop state in the loop's extension slot. Loop
// befriends LoopSeam; none of this is public API. Loop thread only.
#pragma once

#include <cstdint>
#include <memory>

#include <weft/detail/timer_node.hpp>
#include <weft/loop.hpp>

#include "core/detail/ready_queue.hpp"

namespace weft::detail {

// Per-loop state owned by a higher layer (the fiber runtime): the loop keeps it, calls
// on_close() first thing in close(), and destroys it with itself.
class LoopExtension {
public:
    virtual ~LoopExtension() = default;
    virtual void on_close(Loop& loop) = 0;
};

class LoopSeam {
public:
    // Queues the entry (no allocation beyond the queue's growth). Throws InvalidStateError
    // on a closed loop (and, in debug mode, off the loop's thread).
    static void post(Loop& loop, const ReadyKind& kind, void* self, uintptr_t arg);
    // The next entry of the ready step in progress, if it is of `kind`: removes it and
    // returns its self, else null (always null in debug mode, which times every entry on
    // its own). At the end of a step, inside run_forever, it starts the next turn's step
    // itself when that turn would only run ready entries (no poll due, no timer due,
    // nothing from other threads). The caller then runs the entry. This lets a suspending
    // fiber hand the thread straight to the next one, in exactly the order the loop would
    // have used.
    static void* take_next_ready(Loop& loop, const ReadyKind& kind) noexcept;
    // post(loop, kind, self, 0), then take_next_ready(loop, kind), in one call (a yield).
    static void* post_and_take_next(Loop& loop, const ReadyKind& kind, void* self);

    // Intrusive timers: the node's fire() runs in the timer step. add_timer throws
    // InvalidStateError on a closed loop; remove_timer of an unqueued node does nothing.
    static void add_timer(Loop& loop, TimerNode* node);
    static void remove_timer(Loop& loop, TimerNode* node) noexcept;

    // The extension slot, typed: extension<T> is null unless a T was put there.
    template <class T>
    static T* extension(Loop& loop) noexcept {
        return static_cast<T*>(extension_slot(loop, &kExtensionKey<T>));
    }
    // Throws InvalidStateError when the slot already holds an extension.
    template <class T>
    static void set_extension(Loop& loop, std::unique_ptr<T> extension) {
        set_extension_slot(loop, &kExtensionKey<T>, std::move(extension));
    }

private:
    template <class T>
    static constexpr char kExtensionKey = 0;  // one address per type
    static LoopExtension* extension_slot(Loop& loop, const void* key) noexcept;
    static void set_extension_slot(Loop& loop, const void* key, std::unique_ptr<LoopExtension> extension);
};

}  // namespace weft::detail
