// Subprocesses: posix_spawnp with the pipes dup'ed onto 0/1/2, an exit watch (a pidfd on
// Linux, EVFILT_PROC on kqueue systems) for the exit, waitpid to reap.
#include <weft/subprocess.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

#include "core/detail/platform.hpp"
#include <weft/combinators.hpp>
#include <weft/io_wait.hpp>
#include <weft/loop.hpp>
#include <weft/sleep.hpp>
#include <weft/task_group.hpp>

extern char** environ;

namespace weft {

namespace {

// Pipe ends not yet handed on (to the child, or to a Stream): closed on every way out, so
// an exception anywhere between pipe() and the last Stream leaks none of them.
struct PipeEnds {
    int fd[2] = {-1, -1};
    PipeEnds() = default;
    PipeEnds(const PipeEnds&) = delete;
    PipeEnds& operator=(const PipeEnds&) = delete;
    ~PipeEnds() {
        for (int end : fd)
            if (end >= 0) ::close(end);
    }
    int release(int i) noexcept { return std::exchange(fd[i], -1); }
    void close_end(int i) noexcept {
        if (fd[i] >= 0) ::close(release(i));
    }
};

void check_spawn_call(int rc, const char* what) {
    if (rc != 0) throw SystemError(rc, std::string("create_subprocess_exec: ") + what);
}

struct FileActions {
    posix_spawn_file_actions_t a;
    FileActions() {
        check_spawn_call(::posix_spawn_file_actions_init(&a), "posix_spawn_file_actions_init");
    }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    ~FileActions() { ::posix_spawn_file_actions_destroy(&a); }
    void dup2(int from, int to) {
        check_spawn_call(::posix_spawn_file_actions_adddup2(&a, from, to),
                         "posix_spawn_file_actions_adddup2");
    }
};

struct SpawnAttr {
    posix_spawnattr_t a;
    SpawnAttr() { check_spawn_call(::posix_spawnattr_init(&a), "posix_spawnattr_init"); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    ~SpawnAttr() { ::posix_spawnattr_destroy(&a); }
};

// The child's ends are blocking, as programs expect.
void make_blocking(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        throw_errno("create_subprocess_exec: fcntl(~O_NONBLOCK) on the child's pipe end");
}

}  // namespace

Process create_subprocess_exec(const std::vector<std::string>& argv, SubprocessOptions options) {
    if (argv.empty())
        throw Error(std::errc::invalid_argument, "create_subprocess_exec: empty argv");
    Loop& loop = Loop::current();
    // Index 0 is the read end: the child reads in[0], we read out[0] and err[0].
    PipeEnds in, out, err;
    if (options.pipe_stdin) {
        detail::ignore_sigpipe_if_default();  // writing to a child that exits: EPIPE
        detail::make_pipe(in.fd);
    }
    if (options.pipe_stdout) detail::make_pipe(out.fd);
    if (options.pipe_stderr) detail::make_pipe(err.fd);
    FileActions actions;
    if (in.fd[0] >= 0) actions.dup2(in.fd[0], 0);
    if (out.fd[1] >= 0) actions.dup2(out.fd[1], 1);
    if (err.fd[1] >= 0) actions.dup2(err.fd[1], 2);
    for (int fd : {in.fd[0], out.fd[1], err.fd[1]})
        if (fd >= 0) make_blocking(fd);
    // Ignored signals stay ignored across exec: without this the child would inherit the
    // SIG_IGN we (or the program) set, and `producer | head`-style children would spin on
    // EPIPE instead of dying quietly. Python's restore_signals does the same.
    SpawnAttr attr;
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    check_spawn_call(::posix_spawnattr_setsigdefault(&attr.a, &defaults),
                     "posix_spawnattr_setsigdefault");
    check_spawn_call(::posix_spawnattr_setflags(&attr.a, POSIX_SPAWN_SETSIGDEF),
                     "posix_spawnattr_setflags");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    int rc = ::posix_spawnp(&pid, args[0], &actions.a, &attr.a, args.data(), environ);
    if (rc != 0) throw SystemError(rc, "create_subprocess_exec(" + argv[0] + ")");
    in.close_end(0);  // the child has its ends now
    out.close_end(1);
    err.close_end(1);
    // From here a throw destroys p, which kills and reaps the child.
    Process p;
    p.pid_ = pid;
    p.exit_watch_ = detail::open_exit_watch(pid);
    // Stream's constructor closes the fd it was given even when it throws.
    if (in.fd[1] >= 0) p.in_.emplace(loop, in.release(1));
    if (out.fd[0] >= 0) p.out_.emplace(loop, out.release(0));
    if (err.fd[0] >= 0) p.err_.emplace(loop, err.release(0));
    return p;
}

Process::Process(Process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      exit_watch_(std::exchange(o.exit_watch_, -1)),
      returncode_(o.returncode_),
      in_(std::move(o.in_)),
      out_(std::move(o.out_)),
      err_(std::move(o.err_)) {}

Process::~Process() {
    if (pid_ > 0 && !returncode_) {
        ::kill(pid_, SIGKILL);
        reap(true);
    }
    if (exit_watch_ >= 0) ::close(exit_watch_);
}

bool Process::reap(bool block) noexcept {
    if (returncode_) return true;
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r < 0 && errno == ECHILD) {  // reaped elsewhere (SIGCHLD ignored?): status unknown
        returncode_ = 255;         // as asyncio does
        return true;
    }
    if (r != pid_) return false;
    returncode_ = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    return true;
}

int Process::wait() {
    if (reap(false)) return *returncode_;
    if (exit_watch_ >= 0) {
        IoWaiter io(Loop::current(), exit_watch_);  // readable once the child has exited
        struct Unregister {
            IoWaiter& io;
            ~Unregister() { io.reset(); }
        } unregister{io};
        while (!reap(false)) {
            io.clear(kReadable);
            io.wait(kReadable);
        }
        return *returncode_;
    }
    // Portable fallback: poll, backing off to 50 ms.
    auto delay = std::chrono::milliseconds(1);
    while (!reap(false)) {
        weft::sleep(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(50));
    }
    return *returncode_;
}

void Process::send_signal(int signo) {
    if (returncode_) return;  // already reaped: the pid may belong to someone else now
    if (::kill(pid_, signo) < 0 && errno != ESRCH)
        throw_errno("kill(" + std::to_string(pid_) + ", " + std::to_string(signo) + ")");
}

std::pair<std::string, std::string> Process::communicate(std::string input, std::optional<Duration> timeout) {
    auto body = [&] {
        // The helpers live in a group: on a timeout or cancel, leaving this scope cancels
        // and awaits them, so none outlives the call still using this Process.
        TaskGroup helpers;
        if (in_ && !in_->is_closing()) {
            helpers.spawn([this, input = std::move(input)] {
                try {
                    in_->write(input);
                    in_->write_eof();  // closes the pipe: the child sees EOF
                } catch (const SystemError&) {  // the child closed its stdin early (EPIPE)
                    in_->abort();
                }
            });
        }
        Task<std::string> err_reader;
        if (err_) err_reader = helpers.spawn([this] { return err_->read_all(); });
        std::string out = out_ ? out_->read_all() : std::string();
        helpers.join();
        std::string err = err_ ? err_reader.result() : std::string();
        wait();
        return std::pair{std::move(out), std::move(err)};
    };
    if (timeout) return weft::timeout(*timeout, body);
    return body();
}

}  // namespace weft
