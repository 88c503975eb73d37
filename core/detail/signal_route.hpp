// Process-wide routing of signals into a loop's self-pipe, for every backend. The handler
// writes the signal number as one byte to the pipe of the loop that owns the signal; at
// most one loop owns a signal (core/detail/signal_source.hpp watches the pipe).
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

bool valid_signal(int signo) noexcept;  // 1..NSIG-1, not SIGKILL or SIGSTOP

// Install the handler for signo, sending it to write_fd. Throws SystemError(EINVAL) for
// a bad signal and SystemError(EBUSY) when another loop already owns it.
void route_signal(int signo, int write_fd);

// Restore the disposition signo had before route_signal. No-op if not routed to write_fd.
void unroute_signal(int signo, int write_fd) noexcept;

// Called by the reader before it reads the pipe: lets the handler write signo's byte again.
void clear_signal_pending(int signo) noexcept;

// How many times the handler has written a byte, in any loop's pipe (it wraps). A loop that
// skips its look at the OS while busy compares it with the value it saw at its last poll:
// news of a signal arrives by memory as well as through the pipe.
// Inline: the busy loop's turn reads it.
inline std::atomic<uint32_t> g_signals_arrived{0};
inline uint32_t signals_arrived() noexcept { return g_signals_arrived.load(std::memory_order_acquire); }

// The self-pipe: create it lazily and read the signal numbers that arrived into a mask.
class SignalPipe {
public:
    SignalPipe() = default;
    ~SignalPipe();
    SignalPipe(const SignalPipe&) = delete;
    SignalPipe& operator=(const SignalPipe&) = delete;

    bool open() const noexcept { return read_fd_ >= 0; }
    void ensure_open();                 // throws SystemError
    int read_fd() const noexcept { return read_fd_; }
    int write_fd() const noexcept { return write_fd_; }
    // Read every pending byte; calls emit(signo) once per distinct signal that arrived.
    // What emit throws propagates (after the pipe is emptied).
    template <class Emit>
    void drain(Emit&& emit);

private:
    int read_fd_ = -1;
    int write_fd_ = -1;
};

}  // namespace weft::detail

#include <unistd.h>

#include <bitset>
#include <csignal>

template <class Emit>
void weft::detail::SignalPipe::drain(Emit&& emit) {
    for (int s = 1; s < NSIG; ++s) clear_signal_pending(s);
    std::bitset<NSIG> seen;
    unsigned char buf[128];
    ssize_t n;
    while ((n = ::read(read_fd_, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; ++i)
            if (buf[i] < NSIG) seen.set(buf[i]);
    for (int s = 1; s < NSIG; ++s)
        if (seen.test(s)) emit(s);
}
