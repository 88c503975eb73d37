// Files without blocking the loop (the aiofiles of the seeds): every file operation runs
// on a small pool of its own per loop (2 workers), so slow disks never starve
// run_in_executor jobs, and the calling fiber suspends until it is done. Errors are
// SystemError with errno and the path in what().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <weft/loop.hpp>

namespace weft {

class AsyncFile {
public:
    AsyncFile() = default;
    ~AsyncFile();  // closes (synchronously: close(2) does not wait for the disk)
    AsyncFile(AsyncFile&& other) noexcept;
    AsyncFile& operator=(AsyncFile&& other) noexcept;

    // Up to n bytes (fewer at the end of the file; empty at EOF).
    std::string read(size_t n);
    std::string read_all();          // from the current position to the end
    size_t write(std::string_view data);  // one write(2): may be partial
    void write_all(std::string_view data);
    void close();                    // InvalidStateError if used afterwards
    bool is_open() const noexcept { return fd_ >= 0; }
    const std::string& path() const noexcept { return path_; }

private:
    friend AsyncFile open_file(const std::string& path, std::string_view mode);
    AsyncFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    int checked_fd(const char* what) const;

    int fd_ = -1;
    std::string path_;
};

// aiofiles.open(path, mode): mode is "r", "w", "a", "r+", "w+" or "a+" ("b" is accepted
// and ignored: files are bytes). Throws SystemError (ENOENT, EACCES, ... with the path)
// or std::system_error(EINVAL) for a bad mode.
AsyncFile open_file(const std::string& path, std::string_view mode = "r");

// Whole-file helpers.
std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view data);

}  // namespace weft
