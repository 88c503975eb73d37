// The loop's signal source: the self-pipe signal_route.cpp's handler writes to, watched by
// an ordinary IoWatch like any fd, and the loop's signal number -> handler map. One per
// loop, made by its first add_signal_handler. Loop thread only.
#pragma once

#include <functional>
#include <map>

#include "core/detail/signal_route.hpp"
#include <weft/io_watch.hpp>

namespace weft {
class Loop;
}

namespace weft::detail {

class SignalSource {
public:
    // post(signo) queues a call of run(signo) for the loop's next ready step; the source
    // calls it while it reads the pipe, once per distinct signal that arrived.
    using Post = std::function<void(int signo)>;

    SignalSource(Loop& loop, Post post) : loop_(loop), post_(std::move(post)) {}
    SignalSource(const SignalSource&) = delete;
    SignalSource& operator=(const SignalSource&) = delete;
    // Unregisters the pipe (so: before the loop's reactor is destroyed), restores every
    // routed signal's previous disposition and closes the pipe.
    ~SignalSource() = default;

    // add(signo, handler): route signo to this loop (the first call opens and watches the
    // pipe) and make handler its handler, replacing one set before. Throws SystemError:
    // EINVAL for an invalid signal, SIGKILL or SIGSTOP; EBUSY when another loop owns signo.
    void add(int signo, std::function<void()> handler);

    // remove(signo): restore signo's previous disposition. False if it had no handler.
    bool remove(int signo) noexcept;

    // Whether the pipe is open and watched (after the first add).
    bool watching() const noexcept { return bool(watch_); }

    // run(signo): call signo's handler, reporting what it throws to the loop's exception
    // handler. Nothing if the handler was removed since the signal arrived.
    void run(int signo);

private:
    void on_readable();

    Loop& loop_;
    Post post_;
    SignalPipe pipe_;  // declared before watch_: the watch goes before the fds close
    IoWatch watch_;
    std::map<int, std::function<void()>> handlers_;
};

}  // namespace weft::detail
