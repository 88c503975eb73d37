// The platform shim, in whichever mode this build uses (Linux paths or portable paths).
#include "core/detail/platform.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <weft/loop.hpp>
#include <gtest/gtest.h>

namespace {
bool nonblocking(int fd) { return ::fcntl(fd, F_GETFL) & O_NONBLOCK; }
bool cloexec(int fd) { return ::fcntl(fd, F_GETFD) & FD_CLOEXEC; }
}  // namespace

TEST(Platform, ModeMatchesTheBuild) {
#ifdef WEFT_PORTABLE_PATHS
    EXPECT_TRUE(weft::detail::portable_paths());
#elif defined(__linux__)
    EXPECT_FALSE(weft::detail::portable_paths());
#endif
}

TEST(Platform, PipeIsNonblockingAndCloexec) {
    int fds[2];
    weft::detail::make_pipe(fds);
    for (int fd : fds) {
        EXPECT_TRUE(nonblocking(fd));
        EXPECT_TRUE(cloexec(fd));
    }
    char c;
    EXPECT_EQ(::read(fds[0], &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(Platform, WakeupNotifiesAndDrains) {
    weft::detail::Wakeup w;
    EXPECT_TRUE(cloexec(w.fd()));
    pollfd p{w.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0);
    for (int i = 0; i < 1000; ++i) w.notify();  // many notifications never block
    EXPECT_EQ(::poll(&p, 1, 0), 1);
    w.drain();
    EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST(Platform, SocketsAndAcceptAreNonblockingAndCloexec) {
    int listener = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    EXPECT_TRUE(nonblocking(listener));
    EXPECT_TRUE(cloexec(listener));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener, 4), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);

    EXPECT_EQ(weft::detail::accept_socket(listener, nullptr, nullptr), -1);
    EXPECT_EQ(errno, EAGAIN);

    int client = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
    int rc = ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS);
    pollfd p{listener, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);  // at once, unless a loaded machine delays the handshake
    int conn = weft::detail::accept_socket(listener, nullptr, nullptr);
    ASSERT_GE(conn, 0);
    EXPECT_TRUE(nonblocking(conn));
    EXPECT_TRUE(cloexec(conn));

    // Writing to a closed peer fails with EPIPE instead of killing the process.
    ::close(conn);
    ssize_t n = 0;
    for (int i = 0; i < 10000 && n >= 0; ++i) {  // until the RST has arrived (bounded: ~10 s)
        n = ::send(client, "x", 1, weft::detail::nosignal_send_flags());
        if (n >= 0) ::usleep(1000);
    }
    EXPECT_EQ(n, -1);
    EXPECT_TRUE(errno == EPIPE || errno == ECONNRESET) << errno;
    ::close(client);
    ::close(listener);
}

TEST(Platform, OpenSocketReportsErrno) {
    EXPECT_EQ(weft::detail::open_socket(-42, SOCK_STREAM, 0), -1);
    EXPECT_NE(errno, 0);
}
