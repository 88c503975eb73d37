// Platform shim: Linux fast paths and the portable BSD-style paths (see platform.hpp).
#include "core/detail/platform.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <weft/error.hpp>

#if defined(__linux__) && !defined(WEFT_PORTABLE_PATHS)
#define WEFT_LINUX_PATHS 1
#include <sys/eventfd.h>
#include <sys/syscall.h>
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__OpenBSD__) || defined(__DragonFly__)
#define WEFT_KQUEUE_PATHS 1
#include <sys/event.h>
#endif

#if defined(__linux__)
#include <sys/syscall.h>
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#include <pthread_np.h>
#else
#include <pthread.h>
#endif

namespace weft::detail {

bool is_main_thread() noexcept {
#if defined(__linux__)
    return ::syscall(SYS_gettid) == ::getpid();
#else
    return ::pthread_main_np() == 1;
#endif
}

bool portable_paths() noexcept {
#ifdef WEFT_LINUX_PATHS
    return false;
#else
    return true;
#endif
}

void set_nonblocking_cloexec(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
    int fd_flags = ::fcntl(fd, F_GETFD);
    if (fd_flags < 0 || ::fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) < 0)
        throw_errno("fcntl(FD_CLOEXEC)");
}

void make_pipe(int fds[2]) {
#ifdef WEFT_LINUX_PATHS
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) throw_errno("pipe2");
#else
    if (::pipe(fds) < 0) throw_errno("pipe");
    try {
        set_nonblocking_cloexec(fds[0]);
        set_nonblocking_cloexec(fds[1]);
    } catch (...) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw;
    }
#endif
}

Wakeup::Wakeup() {
#ifdef WEFT_LINUX_PATHS
    read_fd_ = write_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (read_fd_ < 0) throw_errno("eventfd");
#else
    int fds[2];
    make_pipe(fds);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
#endif
}

Wakeup::~Wakeup() {
    if (write_fd_ != read_fd_) ::close(write_fd_);
    ::close(read_fd_);
}

void Wakeup::notify() noexcept {
    int saved = errno;  // callable from a signal handler
#ifdef WEFT_LINUX_PATHS
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(write_fd_, &one, sizeof one);
#else
    char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(write_fd_, &byte, 1);  // EAGAIN: already pending
#endif
    errno = saved;
}

void Wakeup::drain() noexcept {
    char buf[64];
    while (::read(read_fd_, buf, sizeof buf) > 0) {
    }
}

#ifndef WEFT_LINUX_PATHS
namespace {
// The portable paths' second step for a new socket: the flags Linux sets atomically.
// Returns fd, or -1 with errno (and fd closed).
int finish_portable_socket(int fd) noexcept {
    if (fd < 0) return -1;
    try {
        set_nonblocking_cloexec(fd);
    } catch (const SystemError& e) {
        ::close(fd);
        errno = e.errno_value();
        return -1;
    }
#ifdef SO_NOSIGPIPE
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
#endif
    return fd;
}
}  // namespace
#endif

int open_socket(int domain, int type, int protocol) noexcept {
#ifdef WEFT_LINUX_PATHS
    return ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
#else
    return finish_portable_socket(::socket(domain, type, protocol));
#endif
}

int accept_socket(int listen_fd, sockaddr* addr, socklen_t* len) noexcept {
#ifdef WEFT_LINUX_PATHS
    return ::accept4(listen_fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    return finish_portable_socket(::accept(listen_fd, addr, len));
#endif
}

int nosignal_send_flags() noexcept {
    // Linux has no SO_NOSIGPIPE, so even the portable paths keep MSG_NOSIGNAL there.
#ifdef MSG_NOSIGNAL
    return MSG_NOSIGNAL;
#else
    return 0;
#endif
}

void ignore_sigpipe_if_default() noexcept {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
    // Two threads may both get here: both store SIG_IGN, which is harmless. A handler
    // installed between the check and the store would be overwritten; a program that
    // installs one at the same moment as it spawns its first pipe is not worth a lock.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, nullptr);
}

int open_exit_watch(pid_t pid) noexcept {
#if defined(WEFT_LINUX_PATHS) && defined(SYS_pidfd_open)
    int fd = int(::syscall(SYS_pidfd_open, pid, 0));  // Linux 5.3+; ENOSYS before
    if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#elif defined(WEFT_KQUEUE_PATHS)
    int kq = ::kqueue();
    if (kq < 0) return -1;
    ::fcntl(kq, F_SETFD, FD_CLOEXEC);
    struct kevent change;
    EV_SET(&change, pid, EVFILT_PROC, EV_ADD | EV_ONESHOT, NOTE_EXIT, 0, nullptr);
    if (::kevent(kq, &change, 1, nullptr, 0, nullptr) < 0) {  // ESRCH: it exited already
        ::close(kq);
        return -1;
    }
    return kq;
#else
    (void)pid;
    return -1;
#endif
}

}  // namespace weft::detail
