// IoWatch on every backend: readiness on pipes and sockets, peer close, socket errors,
// the edge-like contract (clear_ready), stale events after fd reuse, and bad input.
#include <weft/error.hpp>
#include <weft/io_watch.hpp>
#include <weft/loop.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/detail/platform.hpp"
#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {

struct Pipe {
    int fds[2];
    Pipe() { weft::detail::make_pipe(fds); }
    ~Pipe() {
        close_read();
        close_write();
    }
    int r() const { return fds[0]; }
    int w() const { return fds[1]; }
    void close_read() {
        if (fds[0] >= 0) ::close(std::exchange(fds[0], -1));
    }
    void close_write() {
        if (fds[1] >= 0) ::close(std::exchange(fds[1], -1));
    }
};

struct SocketPair {
    int fds[2];
    SocketPair() {
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        weft::detail::set_nonblocking_cloexec(fds[0]);
        weft::detail::set_nonblocking_cloexec(fds[1]);
    }
    ~SocketPair() {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
};

// Runs turns until pred() or the time limit; returns pred(). The default limit only
// bounds a failing test; it is generous for a loaded CI machine, which may, say, deliver a
// loopback RST late.
template <class Pred>
bool run_until(weft::Loop& loop, Pred pred, std::chrono::milliseconds limit = 10000ms) {
    auto deadline = loop.time() + limit;
    while (!pred() && loop.time() < deadline) {
        auto tick = loop.call_later(1ms, [] {});  // bounds the poll step's wait
        loop.run_once();
        tick.cancel();
    }
    return pred();
}

// Runs a few turns whose poll steps do not block.
void spin(weft::Loop& loop, int turns = 3) {
    for (int i = 0; i < turns; ++i) loop.run_once(false);
}

void drain(int fd) {
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
}

}  // namespace

TEST(IoWatch, PipeBecomesReadable) {
    weft::Loop loop;
    Pipe p;
    std::vector<uint32_t> events;
    weft::IoWatch w(loop, p.r(), weft::kReadable, [&](uint32_t ev) { events.push_back(ev); });
    EXPECT_EQ(w.fd(), p.r());
    ASSERT_EQ(::write(p.w(), "hi", 2), 2);
    ASSERT_TRUE(run_until(loop, [&] { return !events.empty(); }));
    EXPECT_TRUE(events[0] & weft::kReadable);
    EXPECT_TRUE(w.ready() & weft::kReadable);
}

TEST(IoWatch, NotReportedAgainUntilClearReady) {
    weft::Loop loop;
    Pipe p;
    int calls = 0;
    weft::IoWatch w(loop, p.r(), weft::kReadable, [&](uint32_t) { ++calls; });
    ASSERT_EQ(::write(p.w(), "a", 1), 1);
    ASSERT_TRUE(run_until(loop, [&] { return calls == 1; }));
    // More data while the owner has not cleared: no second report, on every backend.
    ASSERT_EQ(::write(p.w(), "b", 1), 1);
    spin(loop, 5);
    EXPECT_EQ(calls, 1);
    // The owner reads to EAGAIN and clears; new data is reported again.
    drain(p.r());
    w.clear_ready(weft::kReadable);
    EXPECT_FALSE(w.ready() & weft::kReadable);
    ASSERT_EQ(::write(p.w(), "c", 1), 1);
    ASSERT_TRUE(run_until(loop, [&] { return calls == 2; }));
}

TEST(IoWatch, ClearWithDataStillBufferedIsReportedAgainOnLevelBackends) {
    // After clear_ready the owner must have drained; if it did not, epoll/kqueue may stay
    // silent while poll reports again. This pins down what each backend does.
    weft::Loop loop;
    Pipe p;
    int calls = 0;
    weft::IoWatch w(loop, p.r(), weft::kReadable, [&](uint32_t) { ++calls; });
    ASSERT_EQ(::write(p.w(), "ab", 2), 2);
    ASSERT_TRUE(run_until(loop, [&] { return calls == 1; }));
    w.clear_ready(weft::kReadable);
    if (std::string(weft::Loop::reactor_name()) == "poll") {
        EXPECT_TRUE(run_until(loop, [&] { return calls == 2; }));
    } else {
        spin(loop, 5);
        EXPECT_EQ(calls, 1);
    }
}

TEST(IoWatch, SocketWritableThenReadable) {
    weft::Loop loop;
    SocketPair sp;
    uint32_t seen_a = 0, seen_b = 0;
    weft::IoWatch a(loop, sp.fds[0], weft::kReadable | weft::kWritable,
                    [&](uint32_t ev) { seen_a |= ev; });
    weft::IoWatch b(loop, sp.fds[1], weft::kReadable, [&](uint32_t ev) { seen_b |= ev; });
    ASSERT_TRUE(run_until(loop, [&] { return seen_a & weft::kWritable; }));
    EXPECT_FALSE(seen_b & weft::kReadable);
    ASSERT_EQ(::send(sp.fds[0], "ping", 4, 0), 4);
    ASSERT_TRUE(run_until(loop, [&] { return seen_b & weft::kReadable; }));
    char buf[8];
    EXPECT_EQ(::recv(sp.fds[1], buf, sizeof buf, 0), 4);
}

TEST(IoWatch, WritableAgainAfterSocketBufferDrains) {
    weft::Loop loop;
    SocketPair sp;
    int writable = 0;
    weft::IoWatch w(loop, sp.fds[0], weft::kWritable, [&](uint32_t ev) {
        if (ev & weft::kWritable) ++writable;
    });
    ASSERT_TRUE(run_until(loop, [&] { return writable == 1; }));
    char chunk[4096] = {};
    while (::send(sp.fds[0], chunk, sizeof chunk, 0) > 0) {
    }
    ASSERT_EQ(errno, EAGAIN);
    w.clear_ready(weft::kWritable);
    spin(loop);
    EXPECT_EQ(writable, 1);  // full: not writable
    drain(sp.fds[1]);
    ASSERT_TRUE(run_until(loop, [&] { return writable == 2; }));
}

TEST(IoWatch, PeerCloseOnPipeIsReadableHangup) {
    weft::Loop loop;
    Pipe p;
    uint32_t seen = 0;
    weft::IoWatch w(loop, p.r(), weft::kReadable, [&](uint32_t ev) { seen |= ev; });
    p.close_write();
    ASSERT_TRUE(run_until(loop, [&] { return seen != 0; }));
    EXPECT_TRUE(seen & weft::kReadable);
    EXPECT_TRUE(seen & weft::kHangup);
    char c;
    EXPECT_EQ(::read(p.r(), &c, 1), 0);  // EOF
}

TEST(IoWatch, PeerCloseOnSocketIsReadableHangup) {
    weft::Loop loop;
    SocketPair sp;
    uint32_t seen = 0;
    weft::IoWatch w(loop, sp.fds[0], weft::kReadable, [&](uint32_t ev) { seen |= ev; });
    ::close(std::exchange(sp.fds[1], -1));
    ASSERT_TRUE(run_until(loop, [&] { return seen & weft::kHangup; }));
    EXPECT_TRUE(seen & weft::kReadable);
}

TEST(IoWatch, ConnectRefusedReportsError) {
    weft::Loop loop;
    // Find a port nobody listens on: bind, read the port, close.
    int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    ::close(probe);

    int fd = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int connect_errno = errno;
    ASSERT_TRUE(rc == 0 || connect_errno == EINPROGRESS || connect_errno == ECONNREFUSED);
    uint32_t seen = 0;
    weft::IoWatch w(loop, fd, weft::kReadable | weft::kWritable, [&](uint32_t ev) { seen |= ev; });
    ASSERT_TRUE(run_until(loop, [&] { return seen != 0; }));
    int err = 0;
    socklen_t elen = sizeof err;
    ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
    if (rc < 0 && connect_errno == EINPROGRESS) {
        EXPECT_EQ(err, ECONNREFUSED);
    }
    EXPECT_TRUE(seen & (weft::kError | weft::kHangup)) << seen;
    w.reset();
    ::close(fd);
}

TEST(IoWatch, BadFdIsAClearError) {
    weft::Loop loop;
    for (int bad : {-1, 1000000}) {
        try {
            weft::IoWatch w(loop, bad, weft::kReadable, [](uint32_t) {});
            FAIL() << "no exception for fd " << bad;
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), EBADF) << e.what();
            EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos);
        }
    }
    Pipe p;  // the failed registrations left the loop usable
    bool seen = false;
    weft::IoWatch w(loop, p.r(), weft::kReadable, [&](uint32_t) { seen = true; });
    ASSERT_EQ(::write(p.w(), "x", 1), 1);
    EXPECT_TRUE(run_until(loop, [&] { return seen; }));
}

TEST(IoWatch, DoubleRegistrationIsAClearError) {
    weft::Loop loop;
    Pipe p;
    weft::IoWatch first(loop, p.r(), weft::kReadable, [](uint32_t) {});
    try {
        weft::IoWatch second(loop, p.r(), weft::kReadable, [](uint32_t) {});
        FAIL() << "no exception";
    } catch (const weft::SystemError& e) {
        EXPECT_EQ(e.errno_value(), EEXIST);
    }
    EXPECT_TRUE(first.active());
}

TEST(IoWatch, EventsForAClosedAndReusedFdAreDropped) {
    weft::Loop loop;
    Pipe p;
    int old_calls = 0, new_calls = 0;
    auto w = std::make_unique<weft::IoWatch>(loop, p.r(), weft::kReadable,
                                             [&](uint32_t) { ++old_calls; });
    ASSERT_EQ(::write(p.w(), "x", 1), 1);
    // Let poll pick up the event (it is now queued as a ready entry), then unregister,
    // close, and reuse the fd number (and the slot) for a new pipe before the entry runs.
    loop.run_once(false);
    ASSERT_EQ(old_calls, 0);
    int fd_number = p.r();
    w.reset();
    p.close_read();
    int fds[2];
    weft::detail::make_pipe(fds);
    if (fds[0] != fd_number) {  // make the reuse happen: move the new read end onto the number
        ASSERT_EQ(::dup2(fds[0], fd_number), fd_number);
        ::close(fds[0]);
        fds[0] = fd_number;
    }
    weft::IoWatch fresh(loop, fds[0], weft::kReadable, [&](uint32_t) { ++new_calls; });
    spin(loop);
    EXPECT_EQ(new_calls, 0);  // nothing was written to the new pipe
    EXPECT_EQ(old_calls, 0);  // the stale entry was dropped
    fresh.reset();
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(IoWatch, StaleEntryInTheSameBatchIsDropped) {
    weft::Loop loop;
    Pipe a, b;
    bool a_ran = false, b_after_reset = false;
    weft::IoWatch wb;
    weft::IoWatch wa(loop, a.r(), weft::kReadable, [&](uint32_t) {
        a_ran = true;
        wb.reset();
    });
    wb = weft::IoWatch(loop, b.r(), weft::kReadable, [&](uint32_t) { b_after_reset = a_ran; });
    ASSERT_EQ(::write(a.w(), "x", 1), 1);
    ASSERT_EQ(::write(b.w(), "x", 1), 1);
    loop.run_once(false);  // poll: both events queued in one batch
    spin(loop);
    EXPECT_TRUE(a_ran);
    // b's entry may have run before a's (then it was not reset yet), never after.
    EXPECT_FALSE(b_after_reset);
    EXPECT_FALSE(wb.active());
}

TEST(IoWatch, CallbackMayResetItsOwnWatch) {
    weft::Loop loop;
    Pipe p;
    int calls = 0;
    weft::IoWatch w;
    w = weft::IoWatch(loop, p.r(), weft::kReadable, [&, tag = std::string(100, 'x')](uint32_t) {
        ++calls;
        w.reset();
        EXPECT_EQ(tag.size(), 100u);  // the running callback's captures are still alive
    });
    ASSERT_EQ(::write(p.w(), "x", 1), 1);
    ASSERT_TRUE(run_until(loop, [&] { return calls == 1; }));
    EXPECT_FALSE(w.active());
    // The fd can be watched again.
    bool again = false;
    weft::IoWatch w2(loop, p.r(), weft::kReadable, [&](uint32_t) { again = true; });
    EXPECT_TRUE(run_until(loop, [&] { return again; }));
}

TEST(IoWatch, MoveKeepsTheRegistration) {
    weft::Loop loop;
    Pipe p;
    int calls = 0;
    weft::IoWatch a(loop, p.r(), weft::kReadable, [&](uint32_t) { ++calls; });
    weft::IoWatch b(std::move(a));
    EXPECT_FALSE(a.active());
    EXPECT_TRUE(b.active());
    ASSERT_EQ(::write(p.w(), "x", 1), 1);
    EXPECT_TRUE(run_until(loop, [&] { return calls == 1; }));
}

TEST(IoWatch, SetInterestAddsWritable) {
    weft::Loop loop;
    SocketPair sp;
    uint32_t seen = 0;
    weft::IoWatch w(loop, sp.fds[0], weft::kReadable, [&](uint32_t ev) { seen |= ev; });
    EXPECT_FALSE(run_until(loop, [&] { return seen & weft::kWritable; }, 30ms));
    w.set_interest(weft::kReadable | weft::kWritable);
    EXPECT_TRUE(run_until(loop, [&] { return seen & weft::kWritable; }));
}

TEST(IoWatch, ClosingTheLoopDetachesWatches) {
    Pipe p;
    weft::IoWatch w;
    {
        weft::Loop loop;
        w = weft::IoWatch(loop, p.r(), weft::kReadable, [](uint32_t) {});
        loop.close();
        EXPECT_FALSE(w.active());
        EXPECT_THROW(w.clear_ready(weft::kReadable), weft::InvalidStateError);
        EXPECT_THROW(weft::IoWatch(loop, p.w(), weft::kWritable, [](uint32_t) {}),
                     weft::InvalidStateError);
    }
    w.reset();  // the loop is gone; this must not touch it
}

TEST(IoWatch, ExceptionInIoCallbackIsReported) {
    weft::Loop loop;
    Pipe p;
    std::vector<std::string> sources;
    loop.set_exception_handler(
        [&](weft::Loop&, const weft::ExceptionContext& c) { sources.push_back(c.source); });
    weft::IoWatch w(loop, p.r(), weft::kReadable,
                    [](uint32_t) { throw std::runtime_error("io boom"); });
    ASSERT_EQ(::write(p.w(), "x", 1), 1);
    ASSERT_TRUE(run_until(loop, [&] { return !sources.empty(); }));
    EXPECT_EQ(sources[0], "fd " + std::to_string(p.r()));
}

TEST(IoWatch, ReadinessArrivingBeforeClearReadyIsNotLost) {
    // The owner drained to EAGAIN but a poll ran before it called clear_ready, and new
    // data arrived in that window: every backend must still report it after the clear.
    weft::Loop loop;
    Pipe p;
    int calls = 0;
    weft::IoWatch w(loop, p.r(), weft::kReadable, [&](uint32_t) { ++calls; });
    ASSERT_EQ(::write(p.w(), "a", 1), 1);
    ASSERT_TRUE(run_until(loop, [&] { return calls == 1; }));
    drain(p.r());
    ASSERT_EQ(::write(p.w(), "b", 1), 1);
    spin(loop);  // the new edge is seen while kReadable is still marked ready
    EXPECT_EQ(calls, 1);
    w.clear_ready(weft::kReadable);
    EXPECT_TRUE(run_until(loop, [&] { return calls == 2; }));
}
