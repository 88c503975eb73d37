// AsyncFile: each call hops to the loop's file pool through run_in_executor and back.
#include <weft/files.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "detail/runtime.hpp"
#include <weft/error.hpp>
#include <weft/executor.hpp>

namespace weft {

namespace {

ThreadPool& file_pool() {
    detail::FiberRuntime& rt = detail::FiberRuntime::of(Loop::current());
    if (!rt.file_executor) rt.file_executor = std::make_unique<ThreadPool>(2);
    return *rt.file_executor;
}

template <class F>
auto on_file_pool(F&& fn) {
    return run_in_executor(&file_pool(), std::forward<F>(fn)).get();
}

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
    throw Error(std::make_error_code(std::errc::invalid_argument),
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

}  // namespace

AsyncFile open_file(const std::string& path, std::string_view mode) {
    int flags = flags_for(mode) | O_CLOEXEC;
    int fd = on_file_pool([path, flags] {
        int fd = ::open(path.c_str(), flags, 0666);
        if (fd < 0) throw_errno("open(" + path + ")");
        return fd;
    });
    return AsyncFile(fd, path);
}

AsyncFile::~AsyncFile() {
    if (fd_ >= 0) ::close(fd_);
}

AsyncFile::AsyncFile(AsyncFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

AsyncFile& AsyncFile::operator=(AsyncFile&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
    }
    return *this;
}

int AsyncFile::checked_fd(const char* what) const {
    if (fd_ < 0) throw InvalidStateError(std::string("AsyncFile::") + what + ": the file is closed");
    return fd_;
}

std::string AsyncFile::read(size_t n) {
    int fd = checked_fd("read");
    return on_file_pool([fd, n, path = path_] { return read_fd(fd, n, path); });
}

std::string AsyncFile::read_all() {
    int fd = checked_fd("read_all");
    return on_file_pool([fd, path = path_] { return read_rest(fd, path); });
}

size_t AsyncFile::write(std::string_view data) {
    int fd = checked_fd("write");
    // The job owns a copy: if the caller is cancelled, the job may outlive its view.
    return on_file_pool([fd, data = std::string(data), path = path_] {
        for (;;) {
            ssize_t w = ::write(fd, data.data(), data.size());
            if (w >= 0) return size_t(w);
            if (errno != EINTR) throw_errno("write(" + path + ")");
        }
    });
}

void AsyncFile::write_all(std::string_view data) {
    int fd = checked_fd("write_all");
    on_file_pool([fd, data = std::string(data), path = path_] { write_fd_all(fd, data, path); });
}

void AsyncFile::close() {
    int fd = checked_fd("close");
    fd_ = -1;
    on_file_pool([fd, path = path_] {
        if (::close(fd) < 0 && errno != EINTR) throw_errno("close(" + path + ")");
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
