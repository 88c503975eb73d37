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

#include "detail/platform.hpp"
#include <weft/combinators.hpp>
#include <weft/io_wait.hpp>
#include <weft/loop.hpp>
#include <weft/sleep.hpp>
#include <weft/task_group.hpp>

extern char** environ;

namespace weft {

Process create_subprocess_exec(const std::vector<std::string>& argv, SubprocessOptions options) {
    if (argv.empty())
        throw Error(std::make_error_code(std::errc::invalid_argument), "create_subprocess_exec: empty argv");
    Loop& loop = Loop::current();
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    auto close_all = [&] {
        for (int* p : {in, out, err})
            for (int i = 0; i < 2; ++i)
                if (p[i] >= 0) ::close(p[i]);
    };
    try {
        if (options.pipe_stdin) {
            detail::ignore_sigpipe_if_default();  // writing to a child that exits: EPIPE
            detail::make_pipe(in);
        }
        if (options.pipe_stdout) detail::make_pipe(out);
        if (options.pipe_stderr) detail::make_pipe(err);
    } catch (...) {
        close_all();
        throw;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (in[0] >= 0) posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    if (out[1] >= 0) posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    if (err[1] >= 0) posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    // The child's ends are blocking, as programs expect.
    for (int fd : {in[0], out[1], err[1]})
        if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        close_all();
        throw SystemError(rc, "create_subprocess_exec(" + argv[0] + ")");
    }
    for (int fd : {in[0], out[1], err[1]})  // the child has them now
        if (fd >= 0) ::close(fd);
    Process p;
    p.pid_ = pid;
    p.exit_watch_ = detail::open_exit_watch(pid);
    if (in[1] >= 0) p.in_.emplace(loop, in[1]);
    if (out[0] >= 0) p.out_.emplace(loop, out[0]);
    if (err[0] >= 0) p.err_.emplace(loop, err[0]);
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
                    in_->close();
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
