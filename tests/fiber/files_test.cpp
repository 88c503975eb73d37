// Async files: the seed's example (read three files with gather, write the combined one),
// partial reads, modes, read_line and lines(), seek/tell over the read-ahead, flush/fsync,
// errors that carry the path and errno; and cancellation: a job that outlives its caller
// keeps its descriptor (never a closed or reused one), and operations run one at a time.
#include <weft/weft.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ranges>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../common/wait_until.hpp"

namespace {
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/weft-files-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf " + path).c_str()); }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

using namespace std::chrono_literals;

// Bytes written to a FIFO (or pipe) and not read yet.
int unread_bytes(int fd) {
    int n = -1;
    ::ioctl(fd, FIONREAD, &n);
    return n;
}

// A FIFO in `dir` with a writer end held open (O_RDWR: opening it needs no reader, and
// open_file(path, "r") then needs no wait). The test writes into `writer`.
struct Fifo {
    std::string path;
    int writer = -1;
    explicit Fifo(const std::string& p) : path(p) {
        if (::mkfifo(path.c_str(), 0600) == 0) writer = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    }
    ~Fifo() { close_writer(); }
    void put(std::string_view data) const {
        ASSERT_EQ(::write(writer, data.data(), data.size()), ssize_t(data.size()));
    }
    void close_writer() {
        if (writer >= 0) ::close(writer);
        writer = -1;
    }
};

// The cancellation tests look at descriptors and threads through Linux's /proc.
bool have_proc() {
    return ::access("/proc/self/fd", R_OK) == 0 && ::access("/proc/self/task", R_OK) == 0;
}

// Whether some thread of this process is inside system call `nr` (Linux:
// /proc/self/task/*/syscall starts with the number of the call a thread is blocked in).
bool some_thread_in_syscall(long nr) {
    std::error_code ec;
    for (auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        std::ifstream in(task.path() / "syscall");
        long current = -1;
        if (in >> current && current == nr) return true;
    }
    return false;
}

// How many descriptors of this process name `path` (Linux: /proc/self/fd).
int fds_on(const std::string& path) {
    int n = 0;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        std::error_code ec2;
        if (std::filesystem::read_symlink(e.path(), ec2) == path) ++n;
    }
    return n;
}
}  // namespace

TEST(Files, SeedExampleCombineThreeFiles) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "a.txt", "alpha\n");
        weft::write_file(dir / "b.txt", "beta\n");
        weft::write_file(dir / "c.txt", "gamma\n");
        auto [a, b, c] = weft::gather([&] { return weft::read_file(dir / "a.txt"); },
                                      [&] { return weft::read_file(dir / "b.txt"); },
                                      [&] { return weft::read_file(dir / "c.txt"); });
        auto out = weft::open_file(dir / "combined.txt", "w");
        out.write_all(a + b + c);
        out.close();
        EXPECT_EQ(weft::read_file(dir / "combined.txt"), "alpha\nbeta\ngamma\n");
    });
}

TEST(Files, ReadInPiecesAndAppend) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "0123456789");
        auto f = weft::open_file(dir / "f", "r");
        EXPECT_EQ(f.read(4), "0123");
        EXPECT_EQ(f.read(4), "4567");
        EXPECT_EQ(f.read_all(), "89");
        EXPECT_EQ(f.read(4), "");  // EOF
        f.close();
        EXPECT_FALSE(f.is_open());
        EXPECT_THROW(f.read(1), weft::InvalidStateError);
        auto g = weft::open_file(dir / "f", "ab");
        EXPECT_EQ(g.write("AB"), 2u);
        g.close();
        EXPECT_EQ(weft::read_file(dir / "f"), "0123456789AB");
    });
}

TEST(Files, ErrorsCarryPathAndErrno) {
    weft::run([] {
        try {
            weft::read_file("/nonexistent/weft/file");
            FAIL();
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), ENOENT);
            EXPECT_NE(std::string(e.what()).find("/nonexistent/weft/file"), std::string::npos);
        }
        EXPECT_THROW(weft::open_file("/tmp/x", "rw?"), weft::Error);
    });
}

TEST(Files, LargeFileRoundTrip) {
    TempDir dir;
    weft::run([&] {
        std::string big(5 * 1024 * 1024, 'x');
        for (size_t i = 0; i < big.size(); i += 4097) big[i] = char('a' + i % 26);
        weft::write_file(dir / "big", big);
        EXPECT_EQ(weft::read_file(dir / "big"), big);
    });
}

TEST(Files, ReadLine) {
    TempDir dir;
    weft::run([&] {
        std::string big(200 * 1024, 'L');  // beyond one read-ahead
        weft::write_file(dir / "f", "a\n\nbc\n" + big + "\nlast, no newline");
        auto f = weft::open_file(dir / "f", "r");
        EXPECT_EQ(f.read_line(), "a\n");
        EXPECT_EQ(f.read_line(), "\n");
        EXPECT_EQ(f.read_line(), "bc\n");
        EXPECT_EQ(f.read_line(), big + "\n");
        EXPECT_EQ(f.read_line(), "last, no newline");
        EXPECT_EQ(f.read_line(), "");
        EXPECT_EQ(f.read_line(), "");

        weft::write_file(dir / "empty", "");
        auto e = weft::open_file(dir / "empty", "r");
        EXPECT_EQ(e.read_line(), "");
    });
}

TEST(Files, ReadLineLimitAndMixedReads) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "abcdef\nxyz\n0123456789");
        auto f = weft::open_file(dir / "f", "r");
        EXPECT_EQ(f.read_line(3), "abc");  // Python's readline(3)
        EXPECT_EQ(f.read_line(3), "def");
        EXPECT_EQ(f.read_line(3), "\n");
        EXPECT_EQ(f.read(2), "xy");  // from what read_line read ahead
        EXPECT_EQ(f.read_line(), "z\n");
        EXPECT_EQ(f.read(4), "0123");
        EXPECT_EQ(f.read_all(), "456789");
    });
}

static_assert(std::ranges::input_range<weft::AsyncFile::Lines>);

TEST(Files, IterateByLine) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "one\ntwo\n\nfour");
        auto f = weft::open_file(dir / "f", "r");
        std::vector<std::string> lines;
        for (std::string& line : f.lines()) lines.push_back(std::move(line));
        EXPECT_EQ(lines, (std::vector<std::string>{"one\n", "two\n", "\n", "four"}));

        weft::write_file(dir / "empty", "");
        auto e = weft::open_file(dir / "empty", "r");
        int n = 0;
        for ([[maybe_unused]] auto& line : e.lines()) ++n;
        EXPECT_EQ(n, 0);
    });
}

TEST(Files, SeekAndTellAccountForTheReadAhead) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "line1\nline2\nline3\n");
        auto f = weft::open_file(dir / "f", "r");
        EXPECT_EQ(f.tell(), 0);
        EXPECT_EQ(f.read_line(), "line1\n");  // the rest of the file is read ahead
        EXPECT_EQ(f.tell(), 6);
        EXPECT_EQ(f.read(3), "lin");
        EXPECT_EQ(f.tell(), 9);
        EXPECT_EQ(f.seek(0, SEEK_CUR), 9);
        EXPECT_EQ(f.read_line(), "e2\n");
        EXPECT_EQ(f.seek(-3, SEEK_CUR), 9);
        EXPECT_EQ(f.read_line(), "e2\n");
        EXPECT_EQ(f.seek(0), 0);
        EXPECT_EQ(f.read_line(), "line1\n");
        EXPECT_EQ(f.seek(-2, SEEK_END), 16);
        EXPECT_EQ(f.read_all(), "3\n");
        EXPECT_EQ(f.tell(), 18);
        EXPECT_EQ(f.seek(100), 100);  // past the end, as lseek allows
        EXPECT_EQ(f.read_line(), "");
    });
}

TEST(Files, WriteAfterABufferedReadLandsAtTell) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "line1\nline2\n");
        auto f = weft::open_file(dir / "f", "r+");
        EXPECT_EQ(f.read_line(), "line1\n");
        f.write_all("LINE2");
        EXPECT_EQ(f.tell(), 11);
        EXPECT_EQ(f.read_line(), "\n");
        f.close();
        EXPECT_EQ(weft::read_file(dir / "f"), "line1\nLINE2\n");
    });
}

TEST(Files, AppendModesStartAtTheEnd) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "abc");
        auto a = weft::open_file(dir / "f", "a");
        EXPECT_EQ(a.tell(), 3);
        EXPECT_EQ(a.write("de"), 2u);
        EXPECT_EQ(a.tell(), 5);
        a.close();
        auto ap = weft::open_file(dir / "f", "a+");
        EXPECT_EQ(ap.read_all(), "");
        EXPECT_EQ(ap.seek(0), 0);
        EXPECT_EQ(ap.read_line(), "abcde");
        ap.write_all("\n");  // appends whatever the position
        EXPECT_EQ(ap.tell(), 6);
        ap.close();
        EXPECT_EQ(weft::read_file(dir / "f"), "abcde\n");
    });
}

TEST(Files, FlushAndFsync) {
    TempDir dir;
    weft::run([&] {
        auto f = weft::open_file(dir / "f", "w");
        f.write_all("durable\n");
        f.flush();
        f.fsync();
        EXPECT_EQ(weft::read_file(dir / "f"), "durable\n");
        f.close();
        EXPECT_THROW(f.flush(), weft::InvalidStateError);
        EXPECT_THROW(f.fsync(), weft::InvalidStateError);
        EXPECT_THROW(f.tell(), weft::InvalidStateError);
    });
}

TEST(Files, NewOperationsNameThePathInErrors) {
    TempDir dir;
    Fifo fifo(dir / "fifo");
    ASSERT_GE(fifo.writer, 0);
    weft::run([&] {
        auto expect_errno = [](int err, const std::string& path, auto&& op) {
            try {
                op();
                ADD_FAILURE() << "no error";
            } catch (const weft::SystemError& e) {
                EXPECT_EQ(e.errno_value(), err) << e.what();
                EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
            }
        };
        weft::write_file(dir / "f", "x");
        auto f = weft::open_file(dir / "f", "r");
        expect_errno(EINVAL, f.path(), [&] { f.seek(-1); });
        expect_errno(EINVAL, f.path(), [&] { f.seek(0, 12345); });
        expect_errno(EBADF, f.path(), [&] { f.write("y"); });
        auto w = weft::open_file(dir / "f", "a");
        expect_errno(EBADF, w.path(), [&] { w.read_line(); });
        auto p = weft::open_file(fifo.path, "r");
        expect_errno(ESPIPE, p.path(), [&] { p.seek(0); });
        expect_errno(ESPIPE, p.path(), [&] { p.tell(); });
        expect_errno(EINVAL, p.path(), [&] { p.fsync(); });
    });
}

// The race this file's design is about: a read job blocked on a FIFO outlives its cancelled
// caller, who then closes the file and opens another one (that would get the freed
// number). When the job goes on reading, it must still read the FIFO — never the new file.
TEST(FilesCancel, CancelledJobNeverTouchesAReusedDescriptor) {
    if (!have_proc()) GTEST_SKIP() << "needs /proc (Linux)";
    TempDir dir;
    Fifo fifo(dir / "fifo");
    ASSERT_GE(fifo.writer, 0);
    weft::run([&] {
        weft::write_file(dir / "victim", "VICTIM-DATA");
        auto f = weft::open_file(fifo.path, "r");
        auto reader = weft::spawn([&] { return f.read(100); });
        // One byte in, then the job has consumed it: it is running, blocked for the rest.
        fifo.put("x");
        ASSERT_TRUE(weft::testing::wait_until([&] { return unread_bytes(fifo.writer) == 0; }));
        reader.cancel();
        EXPECT_THROW(reader.get(), weft::Cancelled);
        f.close();
        EXPECT_FALSE(f.is_open());
        EXPECT_EQ(fds_on(fifo.path), 2) << "closed under a running job";  // writer's and f's
        auto victim = weft::open_file(dir / "victim", "r");
        // The job reads these and goes on reading its own descriptor.
        fifo.put("0123456789");
        ASSERT_TRUE(weft::testing::wait_until([&] { return unread_bytes(fifo.writer) == 0; }));
        weft::sleep(50ms);    // room for a stray read of the new file to happen
        fifo.close_writer();  // EOF: the job ends, and the FIFO's last reference goes with it
        EXPECT_TRUE(weft::testing::wait_until([&] { return fds_on(fifo.path) == 0; }));
        EXPECT_EQ(victim.read_all(), "VICTIM-DATA");
    });
}

// open(2) of a FIFO with no writer blocks; the caller is cancelled meanwhile. When the
// open completes, what it opened must be closed, not leaked.
TEST(FilesCancel, CancelledOpenLeavesNothingOpen) {
    if (!have_proc()) GTEST_SKIP() << "needs /proc (Linux)";
    TempDir dir;
    const std::string fifo = dir / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    int writer = -1;
    weft::run([&] {
        auto opener = weft::spawn([&] { weft::open_file(fifo, "r"); });
        ASSERT_TRUE(weft::testing::wait_until([] { return some_thread_in_syscall(SYS_openat); }));
        opener.cancel();
        EXPECT_THROW(opener.get(), weft::Cancelled);
        // A writer lets the blocked open(2) finish (it counts as the FIFO's reader).
        writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_GE(writer, 0);
        EXPECT_TRUE(weft::testing::wait_until([&] { return fds_on(fifo) == 1; }));
    });
    if (writer >= 0) ::close(writer);
}

// A read whose caller gave up (wait_for's timeout) still runs to its end; what it read is
// not lost: the next read returns it.
TEST(FilesCancel, BytesOfACancelledReadAreKept) {
    TempDir dir;
    Fifo fifo(dir / "fifo");
    ASSERT_GE(fifo.writer, 0);
    weft::run([&] {
        auto f = weft::open_file(fifo.path, "r");
        EXPECT_THROW(weft::wait_for([&] { return f.read(6); }, 20ms), weft::TimeoutError);
        fifo.put("hello\nworld\n");
        EXPECT_EQ(f.read(6), "hello\n");
        EXPECT_EQ(f.read(6), "world\n");
        fifo.close_writer();
        EXPECT_EQ(f.read(6), "");
    });
}

// The same for read_line, whose job reads ahead: the next read_line returns the line, the
// rest waits in the read-ahead.
TEST(FilesCancel, WhatACancelledReadLineReadIsKept) {
    TempDir dir;
    Fifo fifo(dir / "fifo");
    ASSERT_GE(fifo.writer, 0);
    weft::run([&] {
        auto f = weft::open_file(fifo.path, "r");
        EXPECT_THROW(weft::wait_for([&] { return f.read_line(); }, 20ms), weft::TimeoutError);
        fifo.put("hello\nwor");
        EXPECT_EQ(f.read_line(), "hello\n");
        fifo.put("ld\n");
        EXPECT_EQ(f.read_line(), "world\n");
        fifo.close_writer();
        EXPECT_EQ(f.read_line(), "");
    });
}

// Fibers reading one file concurrently: the operations run one at a time, in call order.
TEST(FilesCancel, OperationsOnOneFileRunInCallOrder) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "1\n2\n3\n");
        auto f = weft::open_file(dir / "f", "r");
        auto a = weft::spawn([&] { return f.read(2); });
        auto b = weft::spawn([&] { return f.read(2); });
        auto c = weft::spawn([&] { return f.read(2); });
        EXPECT_EQ(c.get(), "3\n");
        EXPECT_EQ(b.get(), "2\n");
        EXPECT_EQ(a.get(), "1\n");
    });
}

// close() while another fiber's read waits on a FIFO: the read finishes with its data (its
// job holds the descriptor, which closes when it ends); later operations find the file
// closed.
TEST(FilesCancel, CloseDoesNotCutARunningOperationShort) {
    if (!have_proc()) GTEST_SKIP() << "needs /proc (Linux)";
    TempDir dir;
    Fifo fifo(dir / "fifo");
    ASSERT_GE(fifo.writer, 0);
    weft::run([&] {
        auto f = weft::open_file(fifo.path, "r");
        auto reader = weft::spawn([&] { return f.read(5); });
        fifo.put("ab");
        ASSERT_TRUE(weft::testing::wait_until([&] { return unread_bytes(fifo.writer) == 0; }));
        f.close();
        EXPECT_EQ(fds_on(fifo.path), 2);
        fifo.put("cde");
        EXPECT_EQ(reader.get(), "abcde");
        EXPECT_TRUE(weft::testing::wait_until([&] { return fds_on(fifo.path) == 1; }));
        try {
            f.read(1);
            FAIL();
        } catch (const weft::InvalidStateError& e) {
            EXPECT_NE(std::string(e.what()).find(fifo.path), std::string::npos) << e.what();
        }
    });
}
