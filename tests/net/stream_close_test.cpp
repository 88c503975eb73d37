// Closing a Stream with data still buffered: close() and ~Stream flush in the background
// (the loop owns the fd until the buffer is sent), abort() drops it and resets, the linger
// time bounds a flush the peer never takes, a dead peer ends it, and loop close abandons
// it without leaking the fd. Each test writes far more than the socket buffers hold, so
// most of it is still in the Stream's buffer when it is closed.
#include <weft/weft.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/detail/platform.hpp"

#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {

constexpr size_t kBig = 8 << 20;  // 8 MiB
constexpr int kSocketBuffer = 64 * 1024;

// Bytes that depend on their position, so a byte lost, doubled or moved shows.
std::string pattern(size_t size) {
    std::string p(size, '\0');
    for (size_t i = 0; i < size; ++i) p[i] = char('a' + (i * 7 + i / 4093) % 26);
    return p;
}

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) >= 0;
}

// A connected pair on 127.0.0.1: `first` opened with `options`, `second` the accepted end.
// Small socket buffers on both (autotuning off), so the kernel holds little of a big write.
std::pair<weft::Stream, weft::Stream> tcp_pair(weft::StreamOptions options = {}) {
    int lfd = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(lfd, 0);
    ::setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
    ::setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
    auto addr = weft::SocketAddress::ip("127.0.0.1", 0);
    EXPECT_EQ(::bind(lfd, addr.get(), addr.size()), 0);
    EXPECT_EQ(::listen(lfd, 1), 0);
    socklen_t len = weft::SocketAddress::capacity();
    ::getsockname(lfd, addr.get(), &len);
    addr.set_size(len);
    weft::ConnectOptions connect;
    connect.stream = options;
    weft::Stream a = weft::open_connection(addr, connect);
    ::setsockopt(a.fd(), SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
    pollfd p{lfd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 5000), 1);  // the handshake is done: the connection is queued
    int fd = weft::detail::accept_socket(lfd, nullptr, nullptr);
    ::close(lfd);
    EXPECT_GE(fd, 0);
    return {std::move(a), weft::Stream(weft::Loop::current(), fd)};
}

// Reads to EOF in 64 KiB pieces, sleeping a millisecond before each: a reader far slower
// than the writer. A read error ends it too; `error` gets its errno.
weft::Task<std::string> slow_reader(weft::Stream& s, int* error = nullptr) {
    return weft::spawn([&s, error] {
        std::string got;
        try {
            for (;;) {
                weft::sleep(1ms);
                std::string piece = s.read(64 * 1024);
                if (piece.empty()) break;
                got += piece;
            }
        } catch (const weft::SystemError& e) {
            if (error) *error = e.code().value();
        }
        return got;
    });
}

}  // namespace

TEST(StreamClose, CloseFlushesEverythingToASlowReaderThenEof) {
    weft::run([] {
        auto [w, r] = tcp_pair();
        const std::string data = pattern(kBig);
        auto reader = slow_reader(r);
        w.write(data);
        ASSERT_GT(w.buffered(), kBig / 2);  // most of it is ours to send, not the kernel's
        w.close();
        EXPECT_TRUE(w.is_closing());
        EXPECT_THROW(w.write("more"), weft::InvalidStateError);  // closed: asyncio's error
        EXPECT_THROW(w.drain(), weft::InvalidStateError);
        std::string got = weft::wait_for(reader, 20s);
        EXPECT_EQ(got.size(), data.size());
        EXPECT_TRUE(got == data) << "the bytes differ";
        w.wait_closed();  // the flush is over by now: it returns at once
        EXPECT_EQ(w.buffered(), 0u);
        EXPECT_FALSE(fd_open(w.fd()));
    });
}

TEST(StreamClose, DestroyingTheStreamFlushesAsCloseDoes) {
    weft::run([] {
        auto pair = tcp_pair();
        weft::Stream& r = pair.second;
        std::optional<weft::Stream> w(std::move(pair.first));
        const std::string data = pattern(kBig);
        auto reader = slow_reader(r);
        w->write(data);
        ASSERT_GT(w->buffered(), kBig / 2);
        const int fd = w->fd();
        w.reset();  // the loop keeps the socket until everything is sent
        EXPECT_TRUE(fd_open(fd));
        std::string got = weft::wait_for(reader, 20s);
        EXPECT_EQ(got.size(), data.size());
        EXPECT_TRUE(got == data) << "the bytes differ";
        EXPECT_FALSE(fd_open(fd));  // EOF came from the close, after the last byte
    });
}

TEST(StreamClose, AbortDropsWhatIsBufferedAndResetsTheConnection) {
    weft::run([] {
        auto [w, r] = tcp_pair();
        w.write(pattern(kBig));
        ASSERT_GT(w.buffered(), kBig / 2);
        const int fd = w.fd();
        w.abort();
        EXPECT_EQ(w.buffered(), 0u);
        EXPECT_TRUE(w.is_closing());
        EXPECT_FALSE(fd_open(fd));
        EXPECT_THROW(w.write("more"), weft::InvalidStateError);
        w.wait_closed();  // nothing to wait for
        w.close();        // nor to do
        int error = 0;
        std::string got = weft::wait_for(slow_reader(r, &error), 20s);
        EXPECT_LT(got.size(), kBig / 2);
        EXPECT_EQ(error, ECONNRESET);  // told it was cut short: not a clean EOF
    });
}

TEST(StreamClose, AbortWakesADrainingFiberWithInvalidState) {
    weft::run([] {
        auto [w, r] = tcp_pair();
        w.write(pattern(kBig));
        auto drainer = weft::spawn([&w] { w.drain(); });
        weft::sleep(0ms);  // the drainer runs until it blocks
        ASSERT_FALSE(drainer.done());
        w.abort();
        EXPECT_THROW(drainer.get(), weft::InvalidStateError);
    });
}

TEST(StreamClose, LingerBoundsAFlushThePeerNeverTakes) {
    weft::run([] {
        weft::StreamOptions options;
        options.linger = 100ms;
        auto [w, r] = tcp_pair(options);  // r never reads
        w.write(pattern(kBig));
        ASSERT_GT(w.buffered(), kBig / 2);
        const int fd = w.fd();
        const auto start = weft::Clock::now();
        w.close();
        EXPECT_TRUE(fd_open(fd));  // still flushing (or trying to)
        weft::wait_for(weft::spawn([&w] { w.wait_closed(); }), 10s);
        const auto took = weft::Clock::now() - start;
        EXPECT_GE(took, 90ms);
        EXPECT_LT(took, 5s);
        EXPECT_FALSE(fd_open(fd));
        EXPECT_EQ(w.buffered(), 0u);  // dropped, as by abort()
        int error = 0;
        std::string got = weft::wait_for(slow_reader(r, &error), 10s);
        EXPECT_LT(got.size(), kBig / 2);
        EXPECT_EQ(error, ECONNRESET);
    });
}

TEST(StreamClose, LingerAlsoBoundsTheFlushOfADestroyedStream) {
    weft::run([] {
        weft::StreamOptions options;
        options.linger = 50ms;
        auto pair = tcp_pair(options);  // pair.second never reads
        std::optional<weft::Stream> w(std::move(pair.first));
        w->write(pattern(kBig));
        ASSERT_GT(w->buffered(), kBig / 2);
        const int fd = w->fd();
        w.reset();  // from here only the loop holds the state; the linger timer frees it
        EXPECT_TRUE(fd_open(fd));
        EXPECT_TRUE(weft::testing::wait_until([&] { return !fd_open(fd); }, 5s));
    });
}

TEST(StreamClose, ADeadPeerEndsTheFlushLongBeforeTheLinger) {
    weft::run([] {
        auto [w, r] = tcp_pair();  // the default linger: 30 s
        w.write(pattern(kBig));
        ASSERT_GT(w.buffered(), kBig / 2);
        const int fd = w.fd();
        w.close();
        const auto start = weft::Clock::now();
        r.abort();  // the peer goes away without reading
        weft::wait_for(weft::spawn([&w] { w.wait_closed(); }), 10s);
        EXPECT_LT(weft::Clock::now() - start, 5s);
        EXPECT_FALSE(fd_open(fd));
        EXPECT_EQ(w.buffered(), 0u);
    });
}

TEST(StreamClose, CloseFlushesAPipeToo) {
    weft::run([] {
        int fds[2];
        weft::detail::make_pipe(fds);
        weft::Stream r(weft::Loop::current(), fds[0]);
        std::optional<weft::Stream> w(std::in_place, weft::Loop::current(), fds[1]);
        const std::string data = pattern(1 << 20);
        auto reader = slow_reader(r);
        w->write(data);
        ASSERT_GT(w->buffered(), 0u);
        w.reset();
        std::string got = weft::wait_for(reader, 20s);
        EXPECT_EQ(got.size(), data.size());
        EXPECT_TRUE(got == data) << "the bytes differ";
    });
}

TEST(StreamClose, LoopCloseAbandonsPendingFlushesAndLeaksNothing) {
    int peer[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, peer), 0);  // peer[1] never reads
    int peer2[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, peer2), 0);
    weft::detail::set_nonblocking_cloexec(peer[0]);
    weft::detail::set_nonblocking_cloexec(peer2[0]);
    std::vector<std::string> reports;
    std::optional<weft::Stream> kept;  // outlives its loop
    weft::run([&] {
        weft::Loop::current().set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { reports.push_back(c.message); });
        {
            weft::Stream dropped(weft::Loop::current(), peer[0]);
            dropped.write(pattern(kBig));
            ASSERT_GT(dropped.buffered(), 0u);
        }  // ~Stream: the loop flushes it now, into a peer that never reads
        kept.emplace(weft::Loop::current(), peer2[0]);
        kept->write(pattern(kBig));
        kept->close();
        weft::sleep(1ms);
        EXPECT_TRUE(fd_open(peer[0]));  // both still in the loop's hands
        EXPECT_TRUE(fd_open(peer2[0]));
    });  // loop close: what is left is dropped, each fd closed, no timer reported
    EXPECT_FALSE(fd_open(peer[0]));
    EXPECT_FALSE(fd_open(peer2[0]));
    EXPECT_TRUE(reports.empty()) << reports.front();
    EXPECT_TRUE(kept->is_closing());
    EXPECT_EQ(kept->buffered(), 0u);
    kept.reset();
    ::close(peer[1]);
    ::close(peer2[1]);
}

// Issue 20, item 5: a moved-from Stream is closed for good, not a null dereference.
TEST(StreamMovedFrom, CloseAndQueriesAreNoOpsAndIoThrows) {
    weft::run([] {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
        ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
        weft::Stream a(weft::Loop::current(), sv[0]);
        weft::Stream peer(weft::Loop::current(), sv[1]);
        weft::Stream b(std::move(a));
        a.close();  // NOLINT(bugprone-use-after-move): what is tested
        a.abort();
        a.wait_closed();
        EXPECT_TRUE(a.is_closing());
        EXPECT_TRUE(a.at_eof());
        EXPECT_EQ(a.buffered(), 0u);
        EXPECT_EQ(a.fd(), -1);
        EXPECT_EQ(a.peer_address().size(), 0u);
        EXPECT_THROW(a.write("x"), weft::InvalidStateError);
        EXPECT_THROW(a.writev({"x", "y"}), weft::InvalidStateError);
        EXPECT_THROW(a.drain(), weft::InvalidStateError);
        EXPECT_THROW(a.write_eof(), weft::InvalidStateError);
        EXPECT_THROW(a.read(), weft::InvalidStateError);
        EXPECT_THROW(a.read_line(), weft::InvalidStateError);
        EXPECT_THROW(a.read_exactly(1), weft::InvalidStateError);
        // The stream it moved to works.
        b.write("hello\n");
        EXPECT_EQ(peer.read_line(), "hello\n");
        b.close();
        peer.close();
    });
}

// Issue 20, item 5: weft's own errors say what happened, without an unrelated errno text
// ("Value too large for defined data type", "Too many links") after it.
TEST(StreamErrors, OwnErrorsCarryTheirOwnMessage) {
    weft::run([] {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
        ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
        weft::StreamOptions small;
        small.limit = 8;
        weft::Stream reader(weft::Loop::current(), sv[0], small);
        weft::Stream writer(weft::Loop::current(), sv[1]);
        writer.write("no newline in these bytes");
        try {
            reader.read_until("\n");
            FAIL() << "no LimitOverrunError";
        } catch (const weft::LimitOverrunError& e) {
            EXPECT_EQ(std::string(e.what()),
                      "read_until: separator not found within the limit of 8 bytes");
            EXPECT_EQ(e.code(), std::make_error_code(std::errc::value_too_large));  // still classified
        }
        writer.close();
        reader.close();
    });
    EXPECT_STREQ(weft::http::TooManyRedirects("GET /: more than 10 redirects").what(),
                 "GET /: more than 10 redirects");
    EXPECT_STREQ(weft::IncompleteReadError("ab", 5).what(), "read_exactly: EOF after 2 of 5 bytes");
    EXPECT_STREQ(weft::InvalidStateError("not now").what(), "not now");
    EXPECT_STREQ(weft::TimeoutError("too slow").what(), "too slow");
    EXPECT_STREQ(weft::BrokenProcessPool("worker died").what(), "worker died");
    // An OS error still names the errno.
    EXPECT_NE(std::string(weft::SystemError(ENOENT, "open(/x)").what()).find("No such file"),
              std::string::npos);
}
