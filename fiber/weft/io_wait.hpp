// IoWaiter: lets fibers wait for an fd's readiness. It owns the fd's IoWatch and wakes the
// one fiber waiting to read and the one waiting to write. The usual loop around it:
//
//     for (;;) { n = ::read(fd, ...); if (n >= 0 || errno != EAGAIN) break;
//                waiter.clear(kReadable); waiter.wait(kReadable); }
// A cancelled or timed-out wait leaves no registration behind. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>

#include <weft/handle.hpp>
#include <weft/io_watch.hpp>

namespace weft {

namespace detail {
struct Fiber;
}

class IoWaiter {
public:
    IoWaiter() = default;
    IoWaiter(Loop& loop, int fd);  // registers fd for both directions
    IoWaiter(IoWaiter&&) = delete;  // the watch's callback points at this object
    IoWaiter& operator=(IoWaiter&&) = delete;

    // Suspends the calling fiber until `direction` (kReadable or kWritable) is ready, or
    // the fd reports hang-up/error, or *deadline passes (then returns false).
    bool wait(uint32_t direction, const TimePoint* deadline = nullptr);
    // After EAGAIN: forget the readiness so the next wait really waits. EAGAIN also proves
    // that a reported error was consumed (and, for reads, that there is no EOF), so those
    // flags go too; otherwise a retry loop would spin on them.
    void clear(uint32_t direction) {
        watch_.clear_ready(direction | kError | (direction == kReadable ? kHangup : 0));
    }
    uint32_t ready() const noexcept { return watch_.ready(); }
    // Unregister (before closing the fd); waiting fibers wake and get InvalidStateError.
    void reset() noexcept;
    bool active() const noexcept { return watch_.active(); }
    // Called (on the loop, not in a fiber) whenever the fd becomes writable: lets a stream
    // flush its buffer in the background. Must not throw.
    void set_write_hook(std::function<void()> hook) { write_hook_ = std::move(hook); }

private:
    void on_event(uint32_t events) noexcept;
    IoWatch watch_;
    std::function<void()> write_hook_;
    detail::Fiber* reader_ = nullptr;
    detail::Fiber* writer_ = nullptr;
};

}  // namespace weft
