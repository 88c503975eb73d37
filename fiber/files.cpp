// AsyncFile: each operation hops to the loop's file pool and back. The descriptor is owned
// jointly by the file and the jobs that use it; the read-ahead of read_line and the order
// of operations are kept on the loop thread.
#include <weft/files.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "fiber/detail/runtime.hpp"
#include <weft/error.hpp>
#include <weft/executor.hpp>
#include <weft/sync.hpp>

namespace weft {

namespace detail {

// The descriptor, shared by a file's state and by every job that may use it, and closed by
// whoever lets go of it last: a job that outlives its cancelled caller keeps the number
// from being reused under it. A job drops its reference before its outcome is posted, so
// when the loop sees the outcome the job no longer holds it. fd: any thread (atomic: set by
// the open job, taken out by close() once it holds the only reference). path: immutable.
struct FileFd {
    explicit FileFd(std::string p) : path(std::move(p)) {}
    ~FileFd() {
        if (int n = fd.load(std::memory_order_relaxed); n >= 0) ::close(n);
    }
    FileFd(const FileFd&) = delete;
    FileFd& operator=(const FileFd&) = delete;
    int get() const noexcept { return fd.load(std::memory_order_relaxed); }

    std::atomic<int> fd{-1};
    const std::string path;
};

// An AsyncFile's state. Loop thread only; shared (strongly) with the operations in
// progress and (weakly) with the callback that finishes a cancelled one's job.
struct FileState {
    FileState(std::shared_ptr<FileFd> f, std::string p) : fd(std::move(f)), path(std::move(p)) {}

    std::shared_ptr<FileFd> fd;  // null once closed
    const std::string path;
    // Read-ahead: bytes [pos, buf.size()) came from the descriptor but were not returned
    // yet, so its offset is ahead of the logical position by unread().
    std::string buf;
    size_t pos = 0;
    // Held by one operation — or by the job of a cancelled one — at a time.
    Lock lock;

    size_t unread() const noexcept { return buf.size() - pos; }
    std::string_view unread_view() const noexcept { return {buf.data() + pos, unread()}; }
    void absorb(std::string data) {
        if (unread() == 0) {
            buf = std::move(data);
        } else {
            buf.erase(0, pos);
            buf += data;
        }
        pos = 0;
    }
    std::string take(size_t n) {
        n = std::min(n, unread());
        std::string out;
        if (pos == 0 && n == buf.size()) {
            out = std::move(buf);
        } else {
            out.assign(buf, pos, n);
            pos += n;
            if (pos < buf.size()) return out;
        }
        drop_read_ahead();
        return out;
    }
    void drop_read_ahead() noexcept {
        buf.clear();
        pos = 0;
    }
};

}  // namespace detail

namespace {

using detail::FileFd;
using detail::FileState;

constexpr size_t kReadAhead = 64 * 1024;  // read_line's read(2) size

ThreadPool& file_pool() {
    detail::FiberRuntime& rt = detail::FiberRuntime::of(Loop::current());
    if (!rt.file_executor) rt.file_executor = std::make_unique<ThreadPool>(2);
    return *rt.file_executor;
}

template <class F>
auto on_file_pool(F&& fn) {
    return run_in_executor(&file_pool(), std::forward<F>(fn)).get();
}

InvalidStateError closed_error(const FileState* s, const char* what) {
    std::string where = what;
    if (s) where += "(" + s->path + ")";
    return InvalidStateError(where + ": the file is closed");
}

// One operation on a file: holds the file's lock from its start until the outcome of its
// last job has been applied to the state — by the operation itself, or, if its fiber was
// cancelled meanwhile, by a done callback once the job has ended (or was dropped unstarted).
class Op {
public:
    Op(const std::shared_ptr<FileState>& s, const char* what) : s_(s), what_(what) {
        if (!s_ || !s_->fd) throw closed_error(s_.get(), what);
        s_->lock.acquire();
        if (!s_->fd) {  // closed while this one waited
            s_->lock.release();
            throw closed_error(s_.get(), what);
        }
        held_ = true;
    }
    ~Op() {
        if (held_) s_->lock.release();
    }
    Op(const Op&) = delete;
    Op& operator=(const Op&) = delete;

    FileState& state() const noexcept { return *s_; }

    // Runs fn(fd, path) on the file pool, then apply(state, result) on the loop thread;
    // returns the result (apply may have moved from it).
    template <class Fn, class Apply>
    auto run(Fn fn, Apply apply) {
        using R = std::invoke_result_t<Fn&, int, const std::string&>;
        if (!s_->fd) throw closed_error(s_.get(), what_);
        ThreadFuture<R> job = file_pool().submit([fd = s_->fd, fn = std::move(fn)]() mutable {
            std::shared_ptr<FileFd> held = std::move(fd);  // released before the outcome
            return fn(held->get(), held->path);
        });
        Future<R> done = wrap_future(job);
        try {
            done.base()->wait(what_, nullptr, /*cancel_inner=*/false);
        } catch (const Cancelled&) {
            job.cancel();   // one not started yet never runs
            held_ = false;  // the lock stays held until the job has ended
            done.add_done_callback([state = std::weak_ptr<FileState>(s_), apply](Future<R>& f) {
                (void)apply;  // unused when R is void (clang warns)
                bool ok = !f.cancelled() && !f.exception();  // (the error is not reported)
                std::shared_ptr<FileState> s = state.lock();
                if (!s) return;  // nobody can look at the file any more
                if constexpr (!std::is_void_v<R>) {
                    if (ok) apply(*s, f.result());
                }
                s->lock.release();
            });
            throw;
        }
        if constexpr (std::is_void_v<R>) {
            done.result();
        } else {
            R result = std::move(done.result());
            apply(*s_, result);
            return result;
        }
    }

    template <class Fn>
    auto run(Fn fn) {
        return run(std::move(fn), [](FileState&, auto&) {});
    }

private:
    std::shared_ptr<FileState> s_;
    const char* what_;
    bool held_ = false;
};

int flags_for(std::string_view mode) {
    std::string m;
    for (char c : mode)
        if (c != 'b') m += c;
    if (m == "r") return O_RDONLY;
    if (m == "w") return O_WRONLY | O_CREAT | O_TRUNC;
    if (m == "a") return O_WRONLY | O_CREAT | O_APPEND;
    if (m == "r+") return O_RDWR;
    if (m == "w+") return O_RDWR | O_CREAT | O_TRUNC;
    if (m == "a+") return O_RDWR | O_CREAT | O_APPEND;
    throw Error(std::errc::invalid_argument,
                "open_file: bad mode '" + std::string(mode) + "'");
}

std::string read_fd(int fd, size_t n, const std::string& path) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::read(fd, out.data() + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw_errno("read(" + path + ")");
        }
        if (r == 0) break;
        got += size_t(r);
    }
    out.resize(got);
    return out;
}

std::string read_rest(int fd, const std::string& path) {
    std::string out;
    char buf[64 * 1024];
    for (;;) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw_errno("read(" + path + ")");
        }
        if (r == 0) return out;
        out.append(buf, size_t(r));
    }
}

// What read_line's job brought: up to and a little past a newline, or up to EOF.
struct Chunk {
    std::string data;
    bool eof = false;
};

// Reads kReadAhead at a time until a newline, EOF or `budget` bytes. An error after some
// data returns the data (the error comes again on the next read).
Chunk read_line_chunk(int fd, size_t budget, const std::string& path) {
    Chunk c;
    for (;;) {
        size_t old = c.data.size();
        c.data.resize(old + kReadAhead);
        ssize_t r = ::read(fd, c.data.data() + old, kReadAhead);
        c.data.resize(old + size_t(std::max<ssize_t>(r, 0)));
        if (r < 0) {
            if (errno == EINTR) continue;
            if (old > 0) return c;
            throw_errno("read(" + path + ")");
        }
        if (r == 0) {
            c.eof = true;
            return c;
        }
        if (std::memchr(c.data.data() + old, '\n', size_t(r)) || c.data.size() >= budget) return c;
    }
}

void write_fd_all(int fd, std::string_view data, const std::string& path) {
    while (!data.empty()) {
        ssize_t w = ::write(fd, data.data(), data.size());
        if (w < 0) {
            if (errno == EINTR) continue;
            throw_errno("write(" + path + ")");
        }
        data.remove_prefix(size_t(w));
    }
}

int64_t lseek_fd(int fd, int64_t offset, int whence, const std::string& path) {
    off_t r = ::lseek(fd, off_t(offset), whence);
    if (r < 0) throw_errno("lseek(" + path + ")");
    return int64_t(r);
}

void absorb(FileState& s, std::string& data) {
    s.absorb(std::move(data));
}

// Before a write: moves the descriptor back to the logical position and drops the
// read-ahead (BufferedRandom does the same). A pipe or FIFO cannot seek, and needs not:
// what was read ahead there stays to be read.
void rewind_read_ahead(Op& op) {
    size_t unread = op.state().unread();
    if (unread == 0) return;
    op.run(
        [back = -int64_t(unread)](int fd, const std::string& path) {
            if (::lseek(fd, off_t(back), SEEK_CUR) >= 0) return true;
            if (errno == ESPIPE) return false;
            throw_errno("lseek(" + path + ")");
        },
        [](FileState& s, bool& rewound) {
            if (rewound) s.drop_read_ahead();
        });
}

}  // namespace

AsyncFile open_file(const std::string& path, std::string_view mode) {
    int flags = flags_for(mode) | O_CLOEXEC;
    // Shared with the job: if this fiber is cancelled during open(2), whichever of the two
    // lets go last closes what was opened.
    auto fd = std::make_shared<FileFd>(path);
    on_file_pool([fd, flags]() mutable {
        std::shared_ptr<FileFd> held = std::move(fd);
        int n = ::open(held->path.c_str(), flags, 0666);
        if (n < 0) throw_errno("open(" + held->path + ")");
        held->fd.store(n, std::memory_order_relaxed);  // ordered by the job's completion
        // Python's open() starts appending files at their end (so that tell() says so).
        if ((flags & O_APPEND) && ::lseek(n, 0, SEEK_END) < 0 && errno != ESPIPE)
            throw_errno("lseek(" + held->path + ")");
    });
    return AsyncFile(std::make_shared<FileState>(std::move(fd), path));
}

bool AsyncFile::is_open() const noexcept {
    return s_ && s_->fd;
}

const std::string& AsyncFile::path() const noexcept {
    static const std::string none;
    return s_ ? s_->path : none;
}

std::string AsyncFile::read(size_t n) {
    Op op(s_, "AsyncFile::read");
    FileState& s = op.state();
    if (s.unread() < n) {
        size_t want = n - s.unread();
        op.run([want](int fd, const std::string& path) { return read_fd(fd, want, path); }, absorb);
    }
    return s.take(n);
}

std::string AsyncFile::read_all() {
    Op op(s_, "AsyncFile::read_all");
    op.run(read_rest, absorb);
    return op.state().take(SIZE_MAX);
}

std::string AsyncFile::read_line(size_t limit) {
    Op op(s_, "AsyncFile::read_line");
    FileState& s = op.state();
    for (bool eof = false;;) {
        std::string_view unread = s.unread_view();
        size_t newline = unread.substr(0, limit).find('\n');
        if (newline != std::string_view::npos) return s.take(newline + 1);
        if (eof || unread.size() >= limit) return s.take(limit);
        auto job = [budget = limit - unread.size()](int fd, const std::string& path) {
            return read_line_chunk(fd, budget, path);
        };
        eof = op.run(job, [](FileState& st, Chunk& c) { st.absorb(std::move(c.data)); }).eof;
    }
}

AsyncFile::Lines AsyncFile::lines() {
    return Lines(*this);
}

void AsyncFile::Lines::advance() {
    line_ = file_->read_line();
    done_ = line_.empty();
}

size_t AsyncFile::write(std::string_view data) {
    Op op(s_, "AsyncFile::write");
    rewind_read_ahead(op);
    // The job owns a copy: if the caller is cancelled, the job may outlive its view.
    return op.run([data = std::string(data)](int fd, const std::string& path) {
        for (;;) {
            ssize_t w = ::write(fd, data.data(), data.size());
            if (w >= 0) return size_t(w);
            if (errno != EINTR) throw_errno("write(" + path + ")");
        }
    });
}

void AsyncFile::write_all(std::string_view data) {
    Op op(s_, "AsyncFile::write_all");
    rewind_read_ahead(op);
    op.run([data = std::string(data)](int fd, const std::string& path) {
        write_fd_all(fd, data, path);
    });
}

int64_t AsyncFile::seek(int64_t offset, int whence) {
    Op op(s_, "AsyncFile::seek");
    // The descriptor is ahead of the logical position by what was read ahead.
    if (whence == SEEK_CUR) offset -= int64_t(op.state().unread());
    auto job = [offset, whence](int fd, const std::string& path) {
        return lseek_fd(fd, offset, whence, path);
    };
    return op.run(job, [](FileState& s, int64_t&) { s.drop_read_ahead(); });
}

int64_t AsyncFile::tell() {
    Op op(s_, "AsyncFile::tell");
    int64_t at =
        op.run([](int fd, const std::string& path) { return lseek_fd(fd, 0, SEEK_CUR, path); });
    return at - int64_t(op.state().unread());
}

void AsyncFile::flush() {
    if (!is_open()) throw closed_error(s_.get(), "AsyncFile::flush");
}

void AsyncFile::fsync() {
    Op op(s_, "AsyncFile::fsync");
    op.run([](int fd, const std::string& path) {
        while (::fsync(fd) < 0)
            if (errno != EINTR) throw_errno("fsync(" + path + ")");
    });
}

void AsyncFile::close() {
    if (!is_open()) throw closed_error(s_.get(), "AsyncFile::close");
    std::shared_ptr<FileFd> fd = std::move(s_->fd);
    s_->drop_read_ahead();
    // References are added on this thread only, so a count of 1 stays 1. Jobs drop theirs
    // with a release decrement: the fence makes their use of the descriptor happen before
    // the close. Otherwise the last job closes it.
    if (fd.use_count() != 1) return;
    std::atomic_thread_fence(std::memory_order_acquire);
    on_file_pool([fd = std::move(fd)] {
        // (A close job dropped unstarted leaves it to ~FileFd.)
        int n = fd->fd.exchange(-1, std::memory_order_relaxed);
        if (::close(n) < 0 && errno != EINTR) throw_errno("close(" + fd->path + ")");
    });
}

std::string read_file(const std::string& path) {
    return on_file_pool([path] {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw_errno("open(" + path + ")");
        struct Closer {
            int fd;
            ~Closer() { ::close(fd); }
        } closer{fd};
        return read_rest(fd, path);
    });
}

void write_file(const std::string& path, std::string_view data) {
    on_file_pool([path, data = std::string(data)] {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) throw_errno("open(" + path + ")");
        struct Closer {
            int fd;
            ~Closer() { ::close(fd); }
        } closer{fd};
        write_fd_all(fd, data, path);
    });
}

}  // namespace weft
