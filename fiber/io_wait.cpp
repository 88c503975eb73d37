// IoWaiter: readiness bits from the loop's IoWatch, turned into fiber wake-ups.
#include <weft/io_wait.hpp>

#include <optional>

#include "fiber/detail/fiber.hpp"
#include <weft/error.hpp>

namespace weft {

IoWaiter::IoWaiter(Loop& loop, int fd)
    : watch_(loop, fd, kReadable | kWritable, [this](uint32_t events) { on_event(events); }) {}

namespace {
// A reader is done waiting on data, EOF or error; a writer on room or error (the peer's
// half-close, kHangup, says nothing about whether we can write).
uint32_t wanted_for(uint32_t direction) {
    return direction == kReadable ? kReadable | kHangup | kError : kWritable | kError;
}
}  // namespace

void IoWaiter::on_event(uint32_t events) noexcept {
    if (reader_ && (events & wanted_for(kReadable))) detail::wake(reader_);
    if (writer_ && (events & wanted_for(kWritable))) detail::wake(writer_);
    if (write_hook_ && (events & wanted_for(kWritable))) write_hook_();
}

void IoWaiter::reset() noexcept {
    watch_.reset();
    if (reader_) detail::wake(reader_);  // they see the waiter inactive and give up
    if (writer_) detail::wake(writer_);
}

bool IoWaiter::wait(uint32_t direction, const TimePoint* deadline) {
    if (!watch_.active()) throw InvalidStateError("IoWaiter::wait: the socket is closed");
    const uint32_t wanted = wanted_for(direction);
    if (watch_.ready() & wanted) return true;
    detail::Fiber* f = detail::require_fiber(direction == kReadable ? "read" : "write");
    detail::Fiber*& slot = direction == kReadable ? reader_ : writer_;
    if (slot) throw InvalidStateError("IoWaiter::wait: another fiber is already waiting");
    slot = f;
    struct Clear {  // cancelled, timed out or done: no waiter is left registered
        detail::Fiber*& slot;
        ~Clear() { slot = nullptr; }
    } clear{slot};
    std::optional<detail::WakeTimer> timer;
    if (deadline) timer.emplace(f, *deadline);
    const detail::WaitRecord waiting{direction == kReadable ? "read" : "write", this,
                                     deadline ? deadline->time_since_epoch().count() : -1,
                                     watch_.fd()};
    detail::WaitScope scope(f, waiting);
    while (!(watch_.ready() & wanted)) {
        if (!watch_.active()) throw InvalidStateError("IoWaiter::wait: the socket was closed");
        if (timer && timer->fired()) return false;
        detail::suspend(f);
    }
    return true;
}

}  // namespace weft
