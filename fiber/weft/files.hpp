// Files without blocking the loop (aiofiles): every file operation runs on a small pool of
// its own per loop (2 workers), so slow disks never starve run_in_executor jobs, and the
// calling fiber suspends until it is done. Errors are SystemError with errno and the path.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <weft/loop.hpp>

namespace weft {

namespace detail {
struct FileState;
}

// An open file (aiofiles' file object). Move-only; its operations need a fiber.
//
// One operation at a time: operations on one file — from one fiber or several — run one
// after the other, in call order (a FIFO lock, as Python's buffered file holds one), so
// they share the file position the way sequential calls would.
//
// Cancellation: a fiber cancelled in an operation returns (Cancelled) at once, as in
// asyncio, but a job that has started on the pool cannot be stopped: it runs to its end.
// Until it has, the descriptor stays open — close() or the destructor then only lets go
// of it, and the job's end closes it — so its number is never reused under the job; and
// the next operation on the file waits for that job, whose effect is kept: bytes it read
// are returned by the next read, bytes it wrote are written. A job that had not started
// never runs.
//
// What a cancelled read's job read is kept in a buffer for the next read, so a write first
// moves the descriptor back over it. Writes are not buffered (one write(2) per write(),
// several per write_all()).
class AsyncFile {
public:
    AsyncFile() = default;
    // Closes the file: on the loop thread (close(2) does not wait for the disk), or, if an
    // operation or a cancelled operation's job still uses the descriptor, when it ends.
    ~AsyncFile() = default;
    AsyncFile(AsyncFile&& other) noexcept = default;
    AsyncFile& operator=(AsyncFile&& other) noexcept = default;  // closes the old file

    // Up to n bytes (fewer only at the end of the file; empty at EOF).
    std::string read(size_t n);
    std::string read_all();  // from the current position to the end
    size_t write(std::string_view data);  // one write(2): may be partial
    void write_all(std::string_view data);

    // Closes the file: later operations throw InvalidStateError, those already running
    // finish. close(2) runs on the pool and its error is thrown — unless a job still uses
    // the descriptor (a cancelled operation's, another fiber's): then that job closes it
    // when it ends, and an error from close(2) is not reported.
    void close();
    bool is_open() const noexcept;
    const std::string& path() const noexcept;  // empty for a default-constructed file

private:
    friend AsyncFile open_file(const std::string& path, std::string_view mode);
    explicit AsyncFile(std::shared_ptr<detail::FileState> s) : s_(std::move(s)) {}

    // Shared with the operations in progress, so moving or destroying the AsyncFile under
    // them (from another fiber) is safe. Null when default-constructed or moved from.
    std::shared_ptr<detail::FileState> s_;
};

// aiofiles.open(path, mode): mode is "r", "w", "a", "r+", "w+" or "a+" ("b" is accepted
// and ignored: files are bytes). Throws SystemError (ENOENT, EACCES, ... with the path)
// or std::system_error (EINVAL) for a bad mode. Cancelled while the open(2) runs, it
// leaves nothing open.
AsyncFile open_file(const std::string& path, std::string_view mode = "r");

// Whole-file helpers.
std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view data);

}  // namespace weft
