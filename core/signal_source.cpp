// The loop's signal source: a self-pipe on an IoWatch, read in the ready step, and the
// handlers it runs. Routing (the sigaction handler, one owner per signal) is
// signal_route.cpp's.
#include "core/detail/signal_source.hpp"

#include <string>

#include <weft/error.hpp>
#include <weft/loop.hpp>

namespace weft::detail {

void SignalSource::add(int signo, std::function<void()> handler) {
    if (!valid_signal(signo))
        throw SystemError(EINVAL, "add_signal_handler: invalid signal " + std::to_string(signo));
    if (!watch_) {
        pipe_.ensure_open();
        watch_ = IoWatch(loop_, pipe_.read_fd(), kReadable, [this](uint32_t) { on_readable(); });
    }
    route_signal(signo, pipe_.write_fd());
    handlers_[signo] = std::move(handler);
}

bool SignalSource::remove(int signo) noexcept {
    auto it = handlers_.find(signo);
    if (it == handlers_.end()) return false;
    handlers_.erase(it);
    unroute_signal(signo, pipe_.write_fd());
    return true;
}

void SignalSource::run(int signo) {
    auto it = handlers_.find(signo);
    if (it == handlers_.end()) return;  // removed since it arrived
    std::function<void()> fn = it->second;  // the handler may remove itself
    try {
        fn();
    } catch (...) {
        loop_.call_exception_handler({"Exception in signal handler", std::current_exception(),
                                      "signal " + std::to_string(signo)});
    }
}

// Asks for the next edge first, then reads until EAGAIN: a byte written meanwhile is read
// now or reported again, and a post() that throws (out of memory: the loop reports it as
// an I/O callback's exception) cannot leave the pipe unwatched.
void SignalSource::on_readable() {
    watch_.clear_ready(kReadable);
    pipe_.drain([this](int signo) { post_(signo); });
}

}  // namespace weft::detail
