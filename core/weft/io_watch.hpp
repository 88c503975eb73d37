// IoWatch: a registration of one fd with a loop's reactor (move-only RAII; it never
// closes the fd). Readiness is edge-like and the same on every backend:
//   - the callback runs (in the ready step) when a direction in `interest` becomes ready,
//     with the bits that turned on: kReadable, kWritable, plus kHangup / kError;
//   - a direction stays in ready() and is not reported again until you read or wrote
//     until EAGAIN and then called clear_ready(direction).
// Events for an fd that was unregistered — even if its number was reused — are dropped.
#pragma once

#include <cstdint>
#include <functional>

#include <weft/io_events.hpp>

namespace weft {

class Loop;

class IoWatch {
public:
    using Callback = std::function<void(uint32_t events)>;

    IoWatch() noexcept = default;
    // Registers fd. Throws SystemError: EBADF for a bad fd, EEXIST if fd is already
    // watched by this loop (one IoWatch per fd), EPERM for files epoll cannot watch;
    // InvalidStateError on a closed loop.
    IoWatch(Loop& loop, int fd, uint32_t interest, Callback callback);
    IoWatch(IoWatch&& other) noexcept;
    IoWatch& operator=(IoWatch&& other) noexcept;
    ~IoWatch() { reset(); }

    void reset() noexcept;  // unregister now (the fd stays open)

    int fd() const noexcept;
    uint32_t ready() const noexcept;    // bits reported and not yet cleared
    void clear_ready(uint32_t bits);    // after EAGAIN: report these directions again
    void set_interest(uint32_t interest);
    bool active() const noexcept { return loop_ != nullptr; }  // false after reset/close
    explicit operator bool() const noexcept { return active(); }

private:
    friend class Loop;
    Loop* loop_ = nullptr;  // null when empty or when the loop was closed under us
    uint32_t slot_ = 0;
};

}  // namespace weft
