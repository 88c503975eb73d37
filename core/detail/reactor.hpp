// The reactor: the one private interface every OS poller implements. One backend per file
// (reactor_epoll.cpp, reactor_kqueue.cpp, reactor_poll.cpp); meson compiles exactly one of
// them into a build, so calls are direct, never virtual. Nothing outside those files
// includes an OS poller header. Signals are not the reactor's: the loop watches a
// self-pipe like any fd (core/detail/signal_source.hpp).
//
// The comment is the interface. A backend defines Reactor::State and these functions:
//
// Reactor() / ~Reactor()
//     Create / destroy the poller and its wake-up channel. Construction throws SystemError.
//     The destructor closes every fd the backend opened; it never closes registered fds.
//
// name()
//     "epoll", "kqueue" or "poll": which backend this build uses.
//
// add(fd, interest, token)
//     Start watching fd for `interest` (kReadable | kWritable). Each poll() event for fd
//     carries `token`. Throws SystemError with EBADF for a bad fd and EEXIST if fd is
//     already registered. Readiness is edge-like on every backend: once a direction has
//     been reported it is not reported again until rearm() names it (epoll and kqueue get
//     this from EPOLLET / EV_CLEAR, poll by dropping the direction from its set).
//
// modify(fd, interest, token)
//     Replace the interest and token of a registered fd; both directions are re-armed.
//
// rearm(fd, directions)
//     The owner read or wrote until EAGAIN: report `directions` again when ready.
//
// remove(fd)
//     Stop watching fd. A closed fd is fine (epoll forgets closed fds on its own).
//     Events for fd already returned by poll() stay in the caller's array: the caller
//     drops them by the token's generation (see Loop's I/O slots).
//
// poll(timeout_ms, out, capacity)
//     Wait up to timeout_ms (-1: forever, 0: just look) for events; store at most
//     `capacity` (>= 1) of them in out and return how many. Readiness that does not fit
//     stays armed and is returned by a later call, none lost. EINTR returns 0. Wake-ups
//     are consumed here and never returned.
//
// wake()
//     Any thread, async-signal-safe: make a blocked or the next poll() return promptly.
#pragma once

#include <cstdint>

#include <weft/io_events.hpp>

namespace weft::detail {

struct ReactorEvent {
    uint64_t token;
    uint32_t events;
};

class Reactor {
public:
    Reactor();
    ~Reactor();
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    static const char* name() noexcept;

    void add(int fd, uint32_t interest, uint64_t token);
    void modify(int fd, uint32_t interest, uint64_t token);
    void rearm(int fd, uint32_t directions);
    void remove(int fd) noexcept;
    int poll(int timeout_ms, ReactorEvent* out, int capacity);
    void wake() noexcept;

private:
    struct State;
    State* s_;
};

}  // namespace weft::detail
