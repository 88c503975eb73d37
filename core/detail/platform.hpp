// The platform shim: every OS difference outside the reactor backends lives here.
// Linux gets eventfd, pipe2, accept4 and SOCK_NONBLOCK|SOCK_CLOEXEC; the BSDs and macOS
// get a self-pipe, pipe + fcntl, accept + fcntl and SO_NOSIGPIPE. Building with
// -Dportable_paths=true (WEFT_PORTABLE_PATHS) forces the BSD paths on Linux so that the
// test suite runs them here.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

namespace weft::detail {

// A spinning thread's pause between looks at shared memory.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// True when this build uses the BSD-style paths (always on BSD/macOS; forced on Linux).
bool portable_paths() noexcept;

// A cross-thread wake-up channel: eventfd on Linux, a non-blocking pipe elsewhere.
// notify() is async-signal-safe and may be called from any thread.
class Wakeup {
public:
    Wakeup();  // throws SystemError
    ~Wakeup();
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;

    int fd() const noexcept { return read_fd_; }  // watch this for readability
    void notify() noexcept;
    void drain() noexcept;  // consume every pending notification

private:
    int read_fd_ = -1;
    int write_fd_ = -1;  // == read_fd_ for eventfd
};

// A non-blocking, close-on-exec pipe. Throws SystemError.
void make_pipe(int fds[2]);

// True on the process's initial thread (the one main() runs on): gettid() == getpid() on
// Linux, pthread_main_np() on the BSDs and macOS.
bool is_main_thread() noexcept;

// Put fd in non-blocking and close-on-exec mode. Throws SystemError.
void set_nonblocking_cloexec(int fd);

// socket(2), non-blocking and close-on-exec, never raising SIGPIPE where the OS allows
// a per-socket setting. Returns -1 with errno set on failure.
int open_socket(int domain, int type, int protocol) noexcept;

// accept(2) giving a non-blocking, close-on-exec socket. Returns -1 with errno on failure.
int accept_socket(int listen_fd, sockaddr* addr, socklen_t* len) noexcept;

// A descriptor that turns readable once child process `pid` has exited, for the reactor
// to watch: a pidfd on Linux, a private kqueue holding EVFILT_PROC/NOTE_EXIT on the BSDs
// and macOS (a kqueue descriptor is itself pollable). Close-on-exec. Returns -1 when the
// OS has neither or the child is already gone (ESRCH): the caller then polls waitpid.
int open_exit_watch(pid_t pid) noexcept;

// Flags for send/sendmsg that keep a write to a closed peer from raising SIGPIPE.
int nosignal_send_flags() noexcept;

// Sets SIGPIPE to SIG_IGN if it is still SIG_DFL (as Python does at start-up), so that a
// write(2) to a pipe whose reader is gone fails with EPIPE instead of killing the process;
// pipes have no per-call flag like MSG_NOSIGNAL. A handler or SIG_IGN the program set is
// left alone. Checked on every call, not once: a fork child or a program may reset the
// disposition later. Called when a Stream adopts a non-socket fd and before a spawn.
void ignore_sigpipe_if_default() noexcept;

}  // namespace weft::detail
