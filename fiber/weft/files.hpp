// Files without blocking the loop (aiofiles): every file operation runs on a small pool of
// its own per loop (2 workers), so slow disks never starve run_in_executor jobs, and the
// calling fiber suspends until it is done. Errors are SystemError with errno and the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>  // SEEK_SET, SEEK_CUR, SEEK_END
#include <iterator>
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
// Reads are buffered for read_line (up to 64 KiB read ahead, as Python's BufferedReader):
// tell() is the logical position (the descriptor's, less what is buffered), and write and
// seek first move the descriptor back to it. Writes are not buffered (one write(2) per
// write(), several per write_all()).
class AsyncFile {
public:
    class Lines;

    AsyncFile() = default;
    // Closes the file: on the loop thread (close(2) does not wait for the disk), or, if an
    // operation or a cancelled operation's job still uses the descriptor, when it ends.
    ~AsyncFile() = default;
    AsyncFile(AsyncFile&& other) noexcept = default;
    AsyncFile& operator=(AsyncFile&& other) noexcept = default;  // closes the old file

    // Up to n bytes (fewer only at the end of the file; empty at EOF).
    std::string read(size_t n);
    std::string read_all();  // from the current position to the end
    // readline(): through the next '\n' (kept), or the rest of the file if none is left;
    // empty only at EOF. At most `limit` bytes (a longer line comes in pieces).
    std::string read_line(size_t limit = SIZE_MAX);
    // `for (std::string& line : file.lines())` — async for line in file: one read_line()
    // per step (begin() and ++ suspend the calling fiber), until EOF.
    Lines lines();

    size_t write(std::string_view data);  // one write(2): may be partial
    void write_all(std::string_view data);

    // seek(offset, whence) with SEEK_SET, SEEK_CUR (from tell()) or SEEK_END: the new
    // position. Errors (EINVAL for a negative position, ESPIPE on a pipe) name the path.
    int64_t seek(int64_t offset, int whence = SEEK_SET);
    int64_t tell();  // the logical position (what is buffered for reading is not counted)
    // Nothing to flush (writes are not buffered): returns at once, InvalidStateError if the
    // file is closed. Not a suspension point.
    void flush();
    void fsync();  // os.fsync(fileno): data and metadata on the disk, on the pool

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

// The input range of file.lines() (like std::ranges::istream_view, it holds the current
// line; its iterators point to it). The file must outlive it.
class AsyncFile::Lines {
public:
    class iterator {
    public:
        using iterator_concept = std::input_iterator_tag;
        using value_type = std::string;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        std::string& operator*() const { return lines_->line_; }
        iterator& operator++() {
            lines_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const { return lines_->done_; }

    private:
        friend class Lines;
        explicit iterator(Lines* lines) : lines_(lines) {}
        Lines* lines_ = nullptr;
    };

    explicit Lines(AsyncFile& file) : file_(&file) {}
    iterator begin() {  // reads the first line
        advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    void advance();
    AsyncFile* file_;
    std::string line_;
    bool done_ = false;
};

// aiofiles.open(path, mode): mode is "r", "w", "a", "r+", "w+" or "a+" ("b" is accepted
// and ignored: files are bytes); in "a" modes the position starts at the end, as in
// Python. Throws SystemError (ENOENT, EACCES, ... with the path) or std::system_error
// (EINVAL) for a bad mode. Cancelled while the open(2) runs, it leaves nothing open.
AsyncFile open_file(const std::string& path, std::string_view mode = "r");

// Whole-file helpers.
std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view data);

}  // namespace weft
