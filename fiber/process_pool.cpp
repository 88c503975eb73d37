// ProcessPool: forked workers, a length-prefixed request/response protocol over
// socketpairs, crash detection by EOF, reaping and replacement; exceptions of plain-function
// jobs sent back by type name and rebuilt.
//
// Request:  u8 kind (0 registered name, 1 plain function), u32 length, the name or the
//           addresses of the caller (detail::process_call<...>) and of the function,
//           u32 input length, input
// Response: u8 status, u32 length, body. Status 0: the output; 1: a registered function's
//           error message; 2: a plain function's exception: u32 length + its type's
//           mangled name, u8 error category (system_error: 1 system, 2 generic, 3 weft;
//           else 0), i32 error code, what()
#include <weft/process_pool.hpp>

#include <cxxabi.h>
#include <dlfcn.h>
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
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <thread>
#include <typeinfo>

#include "core/detail/platform.hpp"
#include <weft/contextvars.hpp>
#include <weft/loop.hpp>
#include <weft/task.hpp>

namespace weft {

void detail::throw_process_truncated() {
    throw ProcessJobError("ProcessPool: a job's arguments or result were cut short");
}

namespace {

enum : uint8_t { kByName = 0, kPlainFunction = 1 };
enum : uint8_t { kReplyOk = 0, kReplyError = 1, kReplyException = 2 };

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

uint8_t category_tag(const std::error_category& c) noexcept {
    if (&c == &std::system_category()) return 1;
    if (&c == &std::generic_category()) return 2;
    if (&c == &weft_category()) return 3;
    return 0;
}

const std::error_category* category_of(uint8_t tag) noexcept {
    switch (tag) {
        case 1: return &std::system_category();
        case 2: return &std::generic_category();
        case 3: return &weft_category();
    }
    return nullptr;
}

// A status-2 body for the exception being handled (called in a catch block).
std::string describe_exception() {
    std::string type = "unknown", what = "(not a std::exception)";
    uint8_t category = 0;
    int32_t code = 0;
    try {
        throw;
    } catch (const std::exception& e) {
        type = typeid(e).name();
        what = e.what();
        if (auto* se = dynamic_cast<const std::system_error*>(&e)) {
            category = category_tag(se->code().category());
            code = se->code().value();
        }
    } catch (...) {
        if (const std::type_info* t = abi::__cxa_current_exception_type()) type = t->name();
    }
    std::string body;
    put_u32(body, uint32_t(type.size()));
    body += type;
    body += char(category);
    put_u32(body, uint32_t(code));
    body += what;
    return body;
}

std::string run_job(uint8_t kind, const std::string& name, std::string_view input,
                    uint8_t& status) {
    if (kind == kPlainFunction && name.size() == 2 * sizeof(void (*)())) {
        void (*call)();
        void (*fn)();
        std::memcpy(&call, name.data(), sizeof call);
        std::memcpy(&fn, name.data() + sizeof call, sizeof fn);
        try {
            return reinterpret_cast<detail::ProcessCall>(call)(fn, input);
        } catch (...) {
            status = kReplyException;
            return describe_exception();
        }
    }
    status = kReplyError;
    auto it = registry().find(name);
    if (kind != kByName || it == registry().end()) return "unknown process function '" + name + "'";
    try {
        std::string output = it->second(input);
        status = kReplyOk;
        return output;
    } catch (const std::exception& e) {
        return std::string(name) + ": " + e.what();
    } catch (...) {
        return std::string(name) + ": non-standard exception";
    }
}

[[noreturn]] void worker_main(int fd) {
    close_other_fds(fd);
    // The parent's loop may route SIGINT (run()'s Ctrl-C rule) to a pipe the worker no
    // longer has: a Ctrl-C on the terminal reaches the whole process group, and a worker
    // ends on it as ProcessPoolExecutor's workers do.
    ::signal(SIGINT, SIG_DFL);
    fd = 3;
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    std::string name, input;
    for (;;) {
        char kind;
        if (!read_exact(fd, &kind, 1) || !read_field(fd, name) || !read_field(fd, input))
            ::_exit(0);  // parent closed
        uint8_t status = kReplyOk;
        std::string body = run_job(uint8_t(kind), name, input, status);
        std::string reply(1, char(status));
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

std::string demangle(const char* mangled) {
    int status = 0;
    char* out = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    if (status != 0 || !out) return mangled;
    std::string name(out);
    std::free(out);
    return name;
}

// A plain-function job's exception from its status-2 body: the same type if it is one
// weft knows how to make from a message, else ProcessJobError naming the type.
std::exception_ptr rebuild_exception(std::string_view body) {
    if (body.size() < 4) return std::make_exception_ptr(ProcessJobError("ProcessPool: bad reply"));
    uint32_t n = get_u32(body.data());
    if (body.size() < 4 + size_t(n) + 5)
        return std::make_exception_ptr(ProcessJobError("ProcessPool: bad reply"));
    std::string type(body.substr(4, n));
    const std::error_category* category = category_of(uint8_t(body[4 + n]));
    int code = int32_t(get_u32(body.data() + 4 + n + 1));
    std::string what(body.substr(4 + n + 5));
    auto is = [&](const std::type_info& t) { return type == t.name(); };
    auto make = [](auto e) { return std::make_exception_ptr(std::move(e)); };
    if (is(typeid(std::invalid_argument))) return make(std::invalid_argument(what));
    if (is(typeid(std::domain_error))) return make(std::domain_error(what));
    if (is(typeid(std::length_error))) return make(std::length_error(what));
    if (is(typeid(std::out_of_range))) return make(std::out_of_range(what));
    if (is(typeid(std::logic_error))) return make(std::logic_error(what));
    if (is(typeid(std::range_error))) return make(std::range_error(what));
    if (is(typeid(std::overflow_error))) return make(std::overflow_error(what));
    if (is(typeid(std::underflow_error))) return make(std::underflow_error(what));
    if (is(typeid(std::runtime_error))) return make(std::runtime_error(what));
    if (is(typeid(std::bad_alloc))) return make(std::bad_alloc());
    if (category) {
        // what() of a system_error is "<message>: <code's message>" (or the latter alone):
        // take the message back out, as the constructors add the rest again.
        std::error_code ec(code, *category);
        std::string suffix = ec.message();
        std::string message = what;
        std::string tail = ": " + suffix;
        bool os_style = true;  // else weft's own error: what() is its message alone
        if (message.size() >= tail.size() &&
            message.compare(message.size() - tail.size(), tail.size(), tail) == 0)
            message.resize(message.size() - tail.size());
        else if (message == suffix)
            message.clear();
        else
            os_style = false;
        if (is(typeid(std::system_error))) return make(std::system_error(ec, message));
        if (is(typeid(Error))) {
            if (!os_style && category == &std::generic_category())
                return make(Error(std::errc(code), what));
            if (!os_style && category == &weft_category()) return make(Error(errc(code), what));
            return make(Error(ec, message));
        }
        if (is(typeid(SystemError)) && category == &std::system_category())
            return make(SystemError(code, message));
        // weft's own errors: what() is the message alone.
        if (is(typeid(InvalidStateError))) return make(InvalidStateError(what));
        if (is(typeid(TimeoutError))) return make(TimeoutError(what));
        if (is(typeid(LookupError))) return make(LookupError(what));
        if (is(typeid(BrokenProcessPool))) return make(BrokenProcessPool(what));
        if (is(typeid(ProcessJobError))) return make(ProcessJobError(what));
    }
    std::string name = demangle(type.c_str());
    return make(ProcessJobError(name + ": " + what, name));
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

namespace {
// A job's future was completed by someone other than the pool: its worker is of no use
// any more. Only the signal here (this runs inside the future's finish()); the worker's
// EOF then goes through the usual path: retire (reap, close) and replace.
void kill_abandoned_worker(detail::Waiter* waiter) {
    auto* abandon = static_cast<detail::ProcessAbandon*>(waiter);
    if (abandon->worker > 0) ::kill(abandon->worker, SIGKILL);
}
}  // namespace

void ProcessPool::Job::detach() noexcept {
    if (result) detail::unlink_waiter(*result.get(), abandon);
    abandon.worker = -1;
}

std::string ProcessPool::Job::describe() const {
    if (by_name) return name;
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(fn), &info) && info.dli_sname)
        return demangle(info.dli_sname);
    char address[32];
    std::snprintf(address, sizeof address, "%p", reinterpret_cast<void*>(fn));
    return std::string("the function at ") + address;
}

Future<std::string> ProcessPool::submit(const std::string& name, std::string input) {
    if (closed_) throw InvalidStateError("ProcessPool::submit: the pool is shut down");
    Future<std::string> result(*loop_);
    auto job = std::make_unique<Job>();
    job->name = name;
    job->input = std::move(input);
    job->result = detail::Ref<detail::FutureBase>(result.base());
    job->deliver = [](detail::FutureBase& result, std::string_view output) {  // the bytes
        static_cast<detail::FutureState<std::string>&>(result).set_result(std::string(output));
    };
    pending_.push_back(std::move(job));
    dispatch();
    return result;
}

void ProcessPool::enqueue(void (*call)(), void (*fn)(), std::string input,
                          detail::FutureBase* result, detail::ProcessDeliver deliver) {
    if (closed_) throw InvalidStateError("ProcessPool::submit: the pool is shut down");
    auto job = std::make_unique<Job>();
    job->by_name = false;
    job->call = call;
    job->fn = fn;
    job->input = std::move(input);
    job->result = detail::Ref<detail::FutureBase>(result);
    job->deliver = deliver;
    pending_.push_back(std::move(job));
    dispatch();
}

void ProcessPool::dispatch() {
    for (auto& w : workers_) {
        if (w->job || w->fd < 0) continue;
        while (!pending_.empty() && pending_.front()->result->done())  // cancelled
            pending_.pop_front();
        if (pending_.empty()) return;
        std::unique_ptr<Job> job = std::move(pending_.front());
        pending_.pop_front();
        std::string request(1, char(job->by_name ? kByName : kPlainFunction));
        if (job->by_name) {
            put_u32(request, uint32_t(job->name.size()));
            request += job->name;
        } else {
            put_u32(request, uint32_t(sizeof job->call + sizeof job->fn));
            request.append(reinterpret_cast<const char*>(&job->call), sizeof job->call);
            request.append(reinterpret_cast<const char*>(&job->fn), sizeof job->fn);
        }
        put_u32(request, uint32_t(job->input.size()));
        request += job->input;
        w->job = std::move(job);
        w->job->abandon.worker = w->pid;
        w->job->abandon.notify = &kill_abandoned_worker;
        detail::link_waiter(*w->job->result.get(), w->job->abandon);
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
        uint8_t status = uint8_t(w.inbox[0]);
        std::string body = w.inbox.substr(5, len);
        w.inbox.erase(0, 5 + size_t(len));
        std::unique_ptr<Job> job = std::move(w.job);
        if (job) job->detach();  // completed by the pool from here on: not abandoned
        if (job && !job->result->done()) {
            if (status == kReplyOk) {
                try {
                    job->deliver(*job->result.get(), body);
                } catch (...) {  // a result cut short
                    job->result->set_exception(std::current_exception());
                }
            } else if (status == kReplyException) {
                job->result->set_exception(rebuild_exception(body));
            } else {
                job->result->set_exception(std::make_exception_ptr(ProcessJobError(body)));
            }
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
    std::unique_ptr<Job> job = std::move(w.job);
    if (job) job->detach();  // before the reaping: its pid must not be signalled after
    w.watch.reset();
    ::close(w.fd);
    w.fd = -1;
    int status = 0;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string what = describe_exit(w.pid, status) + " (" + why + ")";
    if (job && !job->result->done())
        job->result->set_exception(std::make_exception_ptr(
            BrokenProcessPool(what + " while running '" + job->describe() + "'")));
    w.pid = -1;
    if (!closed_) {
        spawn_worker(w);
        dispatch();
    }
}

void ProcessPool::stop_worker(Worker& w) noexcept {
    if (w.pid < 0) return;
    std::unique_ptr<Job> job = std::move(w.job);
    if (job) job->detach();
    w.watch.reset();
    if (job) ::kill(w.pid, SIGKILL);  // not waited for: do not let it finish
    ::close(w.fd);                    // an idle worker sees EOF and exits
    w.fd = -1;
    int status;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (job && !job->result->done()) job->result->cancel("process pool shut down");
    w.pid = -1;
}

void ProcessPool::shutdown(bool wait) {
    if (closed_ && workers_.empty()) return;
    if (wait && current_task()) {  // awaiting needs a fiber; elsewhere queued jobs are cancelled
        // Let the queued and running jobs finish, awaiting them on the loop. Cancelled
        // from wait() is the caller's own (a job cancelled by its owner is just done, and
        // its worker already killed): the caller being cancelled does not cancel the jobs,
        // which belong to their submitters (cancel_inner false, as shield).
        std::vector<detail::Ref<detail::FutureBase>> outstanding;
        for (auto& job : pending_) outstanding.push_back(job->result);
        for (auto& w : workers_)
            if (w->job) outstanding.push_back(w->job->result);
        for (auto& f : outstanding) {
            f->wait("ProcessPool::shutdown", nullptr, /*cancel_inner=*/false);
            if (!f->cancelled()) f->exception();  // seen here: its awaiter may have gone
        }
    }
    closed_ = true;
    for (auto& job : pending_)
        if (!job->result->done()) job->result->cancel("process pool shut down");
    pending_.clear();
    for (auto& w : workers_) stop_worker(*w);
    workers_.clear();
}

}  // namespace weft
