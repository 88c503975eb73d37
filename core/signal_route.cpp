// Signal routing, the one place for every backend: one sigaction handler for every
// routed signal, writing the signal number to the owning loop's pipe.
#include "core/detail/signal_route.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>

#include "core/detail/platform.hpp"
#include <weft/error.hpp>

namespace weft::detail {

namespace {

// Write end of the owning pipe per signal, -1 if unrouted. Any thread and the signal
// handler read it (atomic); route/unroute change it under g_route_mutex.
std::atomic<int> g_signal_fd[NSIG];
// Set by the handler when it writes a signal's byte, cleared by the reader: at most one
// byte per signal is in the pipe, so a burst of one signal cannot crowd out another.
std::atomic<bool> g_signal_pending[NSIG];
// Handlers between loading an fd and finishing their write: the pipe is closed only when
// this is zero, so a late handler never writes into a reused fd number.
std::atomic<int> g_handlers_in_flight{0};
struct sigaction g_old_action[NSIG];  // guarded by g_route_mutex
std::mutex g_route_mutex;
std::once_flag g_init_once;

void on_signal(int signo) {
    int saved = errno;
    g_handlers_in_flight.fetch_add(1, std::memory_order_seq_cst);
    int fd = g_signal_fd[signo].load(std::memory_order_seq_cst);
    if (fd >= 0 && !g_signal_pending[signo].exchange(true, std::memory_order_acq_rel)) {
        unsigned char byte = static_cast<unsigned char>(signo);
        [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
        g_signals_arrived.fetch_add(1, std::memory_order_release);  // after the byte is in
    }
    g_handlers_in_flight.fetch_sub(1, std::memory_order_seq_cst);
    errno = saved;
}

void init_table() {
    for (auto& fd : g_signal_fd) fd.store(-1, std::memory_order_relaxed);
}

}  // namespace

bool valid_signal(int signo) noexcept {
    return signo > 0 && signo < NSIG && signo != SIGKILL && signo != SIGSTOP;
}

void route_signal(int signo, int write_fd) {
    if (!valid_signal(signo))
        throw SystemError(EINVAL, "add_signal_handler: invalid signal " + std::to_string(signo));
    std::call_once(g_init_once, init_table);
    std::lock_guard lock(g_route_mutex);
    int owner = g_signal_fd[signo].load(std::memory_order_relaxed);
    if (owner == write_fd) return;
    if (owner >= 0)
        throw SystemError(EBUSY, "add_signal_handler: signal " + std::to_string(signo) +
                                     " is already handled by another loop");
    g_signal_fd[signo].store(write_fd, std::memory_order_release);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (::sigaction(signo, &sa, &g_old_action[signo]) < 0) {
        int err = errno;
        g_signal_fd[signo].store(-1, std::memory_order_release);
        throw SystemError(err, "sigaction(" + std::to_string(signo) + ")");
    }
}

void unroute_signal(int signo, int write_fd) noexcept {
    if (!valid_signal(signo)) return;
    std::call_once(g_init_once, init_table);
    std::lock_guard lock(g_route_mutex);
    if (g_signal_fd[signo].load(std::memory_order_relaxed) != write_fd) return;
    ::sigaction(signo, &g_old_action[signo], nullptr);
    g_signal_fd[signo].store(-1, std::memory_order_release);
}

void clear_signal_pending(int signo) noexcept {
    g_signal_pending[signo].store(false, std::memory_order_release);
}

SignalPipe::~SignalPipe() {
    if (read_fd_ < 0) return;
    for (int s = 1; s < NSIG; ++s) unroute_signal(s, write_fd_);
    while (g_handlers_in_flight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    ::close(read_fd_);
    ::close(write_fd_);
}

void SignalPipe::ensure_open() {
    if (read_fd_ >= 0) return;
    int fds[2];
    make_pipe(fds);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
}

}  // namespace weft::detail
