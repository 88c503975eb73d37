// Subprocesses (asyncio.create_subprocess_exec): a program with its stdin / stdout /
// stderr as weft Streams, wait() that suspends the calling fiber (the reactor watches a
// pidfd on Linux or a kqueue with EVFILT_PROC on BSD/macOS; waitpid polling where neither
// exists, e.g. Linux before 5.3 or the forced portable paths), kill / terminate, and
// communicate(input, timeout). Every fd weft opens is close-on-exec, so the child gets
// only its three pipes; every child is reaped, so none is left a zombie. Writing to a
// child's stdin needs SIGPIPE ignored: a pipe_stdin spawn, like any Stream over a pipe,
// ignores it if it is still at its default (as Python does at start-up), so a write to a
// child that has exited is SystemError(EPIPE). The child itself starts with SIGPIPE at its
// default (Python's restore_signals), whatever this process set.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <weft/handle.hpp>
#include <weft/stream.hpp>

namespace weft {

struct SubprocessOptions {
    bool pipe_stdin = true;
    bool pipe_stdout = true;
    bool pipe_stderr = false;  // false: the child shares ours
};

class Process {
public:
    Process(Process&&) noexcept;
    Process& operator=(Process&&) = delete;
    ~Process();  // a child still running is killed and reaped

    pid_t pid() const noexcept { return pid_; }
    std::optional<Stream>& stdin_pipe() noexcept { return in_; }
    std::optional<Stream>& stdout_pipe() noexcept { return out_; }
    std::optional<Stream>& stderr_pipe() noexcept { return err_; }

    // Suspends until the child exits; its exit status, or -N if killed by signal N.
    int wait();
    std::optional<int> returncode() const noexcept { return returncode_; }
    void send_signal(int signo);
    void terminate() { send_signal(SIGTERM_); }
    void kill() { send_signal(SIGKILL_); }

    // Writes input to stdin and closes it, reads stdout and stderr to EOF, waits for the
    // exit. On timeout: TimeoutError (the child keeps running; kill it if you like).
    std::pair<std::string, std::string> communicate(std::string input = {},
                                                    std::optional<Duration> timeout = std::nullopt);

private:
    friend Process create_subprocess_exec(const std::vector<std::string>&, SubprocessOptions);
    Process() = default;
    static constexpr int SIGTERM_ = 15;
    static constexpr int SIGKILL_ = 9;
    bool reap(bool block) noexcept;

    pid_t pid_ = -1;
    int exit_watch_ = -1;
    std::optional<int> returncode_;
    std::optional<Stream> in_, out_, err_;
};

// Starts argv[0] (looked up in PATH) with argv. Throws SystemError (ENOENT, EACCES, ...)
// naming the program when it cannot be started.
Process create_subprocess_exec(const std::vector<std::string>& argv, SubprocessOptions options = {});

}  // namespace weft
