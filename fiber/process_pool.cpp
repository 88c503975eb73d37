// ProcessPool: forked workers, a length-prefixed request/response protocol over
// socketpairs, crash detection by EOF, reaping and replacement.
//
// Request:  u32 name length, name, u32 input length, input
// Response: u8 status (0 ok, 1 error), u32 length, output or error message
#include <weft/process_pool.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/syscall.h>  // close_range / pidfd_open
#endif
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <thread>

#include "detail/platform.hpp"
#include <weft/loop.hpp>
#include <weft/task.hpp>

namespace weft {

namespace {

std::map<std::string, ProcessFunction>& registry() {
    static std::map<std::string, ProcessFunction> functions;
    return functions;
}

void put_u32(std::string& out, uint32_t v) {
    unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    out.append(reinterpret_cast<char*>(b), 4);
}

uint32_t get_u32(const char* p) {
    auto u = reinterpret_cast<const unsigned char*>(p);
    return uint32_t(u[0]) << 24 | uint32_t(u[1]) << 16 | uint32_t(u[2]) << 8 | u[3];
}

// ---- the worker process (blocking I/O, never returns) -------------------------------

bool read_exact(int fd, char* buf, size_t n) {
    while (n > 0) {
        ssize_t r = ::read(fd, buf, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        buf += r;
        n -= size_t(r);
    }
    return true;
}

bool write_exact(int fd, const char* buf, size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, buf, n, detail::nosignal_send_flags());
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        buf += w;
        n -= size_t(w);
    }
    return true;
}

bool read_field(int fd, std::string& out) {
    char len[4];
    if (!read_exact(fd, len, 4)) return false;
    out.resize(get_u32(len));
    return read_exact(fd, out.data(), out.size());
}

void close_other_fds(int keep) {
    // The child must not hold the parent's ends of its siblings' sockets (their EOF would
    // never come) nor the loop's fds. Move ours to 3 and close everything above.
    if (keep != 3) {
        ::dup2(keep, 3);
        ::close(keep);
    }
#if defined(__linux__) && defined(SYS_close_range)
    if (::syscall(SYS_close_range, 4u, ~0u, 0u) == 0) return;
#endif
    rlimit rl{};
    int limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? int(rl.rlim_cur) : 65536;
    for (int fd = 4; fd < limit; ++fd) ::close(fd);
}

[[noreturn]] void worker_main(int fd) {
    close_other_fds(fd);
    fd = 3;
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    std::string name, input;
    for (;;) {
        if (!read_field(fd, name) || !read_field(fd, input)) ::_exit(0);  // parent closed
        std::string reply(1, '\0'), body;
        auto it = registry().find(name);
        if (it == registry().end()) {
            reply[0] = 1;
            body = "unknown process function '" + name + "'";
        } else {
            try {
                body = it->second(input);
            } catch (const std::exception& e) {
                reply[0] = 1;
                body = std::string(name) + ": " + e.what();
            } catch (...) {
                reply[0] = 1;
                body = std::string(name) + ": non-standard exception";
            }
        }
        put_u32(reply, uint32_t(body.size()));
        reply += body;
        if (!write_exact(fd, reply.data(), reply.size())) ::_exit(0);
    }
}

// Parent side: the fd is non-blocking; a request is small or the idle worker reads it at
// once, so waiting for writability here is brief.
void send_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t w = ::send(fd, data.data() + off, data.size() - off, detail::nosignal_send_flags());
        if (w >= 0) {
            off += size_t(w);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
        } else if (errno != EINTR) {
            throw_errno("ProcessPool: send to worker");
        }
    }
}

std::string describe_exit(pid_t pid, int status) {
    std::string who = "process pool worker " + std::to_string(pid);
    if (WIFSIGNALED(status)) return who + " was killed by signal " + std::to_string(WTERMSIG(status));
    if (WIFEXITED(status)) return who + " exited with status " + std::to_string(WEXITSTATUS(status));
    return who + " ended";
}

}  // namespace

void register_process_function(const std::string& name, ProcessFunction fn) {
    registry()[name] = fn;
}

ProcessPool::ProcessPool(size_t workers) : loop_(&Loop::current()) {
    if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 0; i < workers; ++i) {
        workers_.push_back(std::make_unique<Worker>());
        try {
            spawn_worker(*workers_.back());
        } catch (...) {
            workers_.pop_back();
            shutdown(false);
            throw;
        }
    }
}

ProcessPool::~ProcessPool() {
    try {
        shutdown(true);
    } catch (...) {
    }
}

std::vector<pid_t> ProcessPool::pids() const {
    std::vector<pid_t> out;
    for (auto& w : workers_) out.push_back(w->pid);
    return out;
}

void ProcessPool::spawn_worker(Worker& w) {
    int fds[2];
#ifdef SOCK_CLOEXEC
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) throw_errno("socketpair");
#else
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) throw_errno("socketpair");
    for (int fd : fds) ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // no SOCK_CLOEXEC here
#endif
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        throw SystemError(err, "fork (process pool worker)");
    }
    if (pid == 0) {
        ::close(fds[0]);
        worker_main(fds[1]);
    }
    ::close(fds[1]);
    detail::set_nonblocking_cloexec(fds[0]);
    w.pid = pid;
    w.fd = fds[0];
    w.inbox.clear();
    Worker* self = &w;
    size_t index = 0;
    for (; index < workers_.size() && workers_[index].get() != self; ++index) {
    }
    w.watch = IoWatch(*loop_, w.fd, kReadable, [this, index](uint32_t) { on_readable(index); });
}

Future<std::string> ProcessPool::submit(const std::string& name, std::string input) {
    if (closed_) throw InvalidStateError("ProcessPool::submit: the pool is shut down");
    auto job = std::make_unique<Job>(Job{name, std::move(input), Future<std::string>(*loop_)});
    Future<std::string> result = job->result;
    pending_.push_back(std::move(job));
    dispatch();
    return result;
}

void ProcessPool::dispatch() {
    for (auto& w : workers_) {
        if (w->job || w->fd < 0) continue;
        while (!pending_.empty() && pending_.front()->result.done()) pending_.pop_front();  // cancelled
        if (pending_.empty()) return;
        std::unique_ptr<Job> job = std::move(pending_.front());
        pending_.pop_front();
        std::string request;
        put_u32(request, uint32_t(job->name.size()));
        request += job->name;
        put_u32(request, uint32_t(job->input.size()));
        request += job->input;
        w->job = std::move(job);
        try {
            send_all(w->fd, request);
        } catch (const SystemError&) {
            retire(*w, "could not send the job");  // the worker is gone: its EOF follows
        }
    }
}

void ProcessPool::on_readable(size_t index) {
    Worker& w = *workers_[index];
    char buf[64 * 1024];
    bool eof = false;
    for (;;) {
        ssize_t r = ::read(w.fd, buf, sizeof buf);
        if (r > 0) {
            w.inbox.append(buf, size_t(r));
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        eof = true;  // 0, or ECONNRESET: the worker is gone
        break;
    }
    while (w.inbox.size() >= 5) {
        uint32_t len = get_u32(w.inbox.data() + 1);
        if (w.inbox.size() < 5 + size_t(len)) break;
        bool ok = w.inbox[0] == 0;
        std::string body = w.inbox.substr(5, len);
        w.inbox.erase(0, 5 + size_t(len));
        if (std::unique_ptr<Job> job = std::move(w.job); job && !job->result.done()) {
            if (ok)
                job->result.set_result(std::move(body));
            else
                job->result.set_exception(ProcessJobError(body));
        }
    }
    if (eof) {
        retire(w, "the worker died");
        return;
    }
    w.watch.clear_ready(kReadable);
    dispatch();
}

void ProcessPool::retire(Worker& w, const std::string& why) {
    w.watch.reset();
    ::close(w.fd);
    w.fd = -1;
    int status = 0;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string what = describe_exit(w.pid, status) + " (" + why + ")";
    if (std::unique_ptr<Job> job = std::move(w.job); job && !job->result.done())
        job->result.set_exception(BrokenProcessPool(what + " while running '" + job->name + "'"));
    w.pid = -1;
    if (!closed_) {
        spawn_worker(w);
        dispatch();
    }
}

void ProcessPool::stop_worker(Worker& w) noexcept {
    if (w.pid < 0) return;
    w.watch.reset();
    if (w.job) ::kill(w.pid, SIGKILL);  // not waited for: do not let it finish
    ::close(w.fd);                      // an idle worker sees EOF and exits
    w.fd = -1;
    int status;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (w.job && !w.job->result.done()) w.job->result.cancel("process pool shut down");
    w.job.reset();
    w.pid = -1;
}

void ProcessPool::shutdown(bool wait) {
    if (closed_ && workers_.empty()) return;
    if (wait && current_task()) {  // awaiting needs a fiber; elsewhere queued jobs are cancelled
        // Let the queued and running jobs finish, awaiting them on the loop.
        std::vector<Future<std::string>> outstanding;
        for (auto& job : pending_) outstanding.push_back(job->result);
        for (auto& w : workers_)
            if (w->job) outstanding.push_back(w->job->result);
        for (auto& f : outstanding) {
            try {
                f.get();
            } catch (const Cancelled&) {
                throw;
            } catch (...) {  // the job's own failure belongs to its awaiter
            }
        }
    }
    closed_ = true;
    for (auto& job : pending_)
        if (!job->result.done()) job->result.cancel("process pool shut down");
    pending_.clear();
    for (auto& w : workers_) stop_worker(*w);
    workers_.clear();
}

}  // namespace weft
