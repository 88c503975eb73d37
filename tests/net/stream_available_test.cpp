// Stream::available, weft's non-suspending "what would read() return now": over plain TCP
// (nothing yet, bytes a read_until left buffered, bytes only in the socket, EOF, a reset,
// another fiber reading) and over TLS 1.2 and 1.3 through a relay the test drives by hand,
// so that a record can be delivered in part, a close_notify alone, or an EOF without it.
#include <weft/weft.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "../common/tls_certs.hpp"
#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using weft::ssl::Version;

namespace {

// Both ends of a TCP connection on loopback, non-blocking, as Stream wants them.
std::pair<int, int> tcp_pair() {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(listener, 1), 0);
    EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    int client = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), len), 0);
    int server = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    for (int fd : {client, server}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return {server, client};
}

// Waits (in a fiber, letting the relay's pumps run) until `fd` is readable: what the peer
// sent is in this end's socket. False after 5 s.
bool in_socket(int fd) {
    return weft::testing::wait_until(
        [&] {
            pollfd p{fd, POLLIN, 0};
            return ::poll(&p, 1, 0) == 1;
        },
        5s);
}

// The count through a deadline: an available() that suspended would fail here, not hang.
size_t available_now(weft::Stream& s) {
    return weft::timeout(2s, [&] { return s.available(); });
}

// A TCP connection: `s` the Stream under test, `peer` the other end's fd.
struct Plain {
    std::pair<int, int> fds = tcp_pair();
    weft::Stream s{weft::Loop::current(), fds.first};
    int peer = fds.second;
    ~Plain() {
        if (peer >= 0) ::close(peer);
    }
    void send(std::string_view data) {
        ASSERT_EQ(::send(peer, data.data(), data.size(), MSG_NOSIGNAL), ssize_t(data.size()));
        ASSERT_TRUE(in_socket(s.fd()));
    }
};

}  // namespace

TEST(StreamAvailable, NothingSentIsZeroWithoutWaiting) {
    weft::run([] {
        Plain c;
        EXPECT_EQ(available_now(c.s), 0u);
        EXPECT_FALSE(c.s.at_eof());
        c.send("x");  // the stream still reads normally afterwards
        EXPECT_EQ(c.s.read(), "x");
    });
}

TEST(StreamAvailable, CountsWhatAReadUntilLeftBuffered) {
    weft::run([] {
        Plain c;
        c.send("line\nrest");
        EXPECT_EQ(c.s.read_until("\n"), "line\n");
        // The socket is empty now: only the Stream's buffer holds "rest".
        EXPECT_EQ(available_now(c.s), 4u);
        c.send("MORE");
        EXPECT_EQ(available_now(c.s), 4u);  // what read() returns now, without the socket
        EXPECT_EQ(c.s.read(), "rest");
        EXPECT_EQ(available_now(c.s), 4u);  // now from the socket
        EXPECT_EQ(weft::timeout(2s, [&] { return c.s.read(); }), "MORE");
    });
}

TEST(StreamAvailable, TakesWhatIsOnlyInTheSocket) {
    weft::run([] {
        Plain c;
        c.send("abc");
        EXPECT_EQ(available_now(c.s), 3u);
        char byte;  // taken off the socket: kept in the Stream for the next read
        EXPECT_EQ(::recv(c.s.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT), -1);
        EXPECT_EQ(available_now(c.s), 3u);
        EXPECT_EQ(weft::timeout(2s, [&] { return c.s.read(); }), "abc");
        EXPECT_EQ(available_now(c.s), 0u);
        EXPECT_FALSE(c.s.at_eof());
    });
}

TEST(StreamAvailable, PeerClosedIsZeroAtEofAfterWhatCameBefore) {
    weft::run([] {
        Plain c;
        c.send("bye");
        ::close(std::exchange(c.peer, -1));
        EXPECT_EQ(available_now(c.s), 3u);
        EXPECT_FALSE(c.s.at_eof());
        EXPECT_EQ(c.s.read(), "bye");
        EXPECT_EQ(available_now(c.s), 0u);
        EXPECT_TRUE(c.s.at_eof());
        EXPECT_EQ(available_now(c.s), 0u);  // and stays so
        EXPECT_EQ(c.s.read(), "");
    });
}

TEST(StreamAvailable, ResetRaisesWhatAReadWould) {
    weft::run([] {
        Plain c;
        linger l{1, 0};
        ::setsockopt(c.peer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(std::exchange(c.peer, -1));
        ASSERT_TRUE(in_socket(c.s.fd()));
        try {
            c.s.available();
            ADD_FAILURE() << "no error for a reset connection";
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.code().value(), ECONNRESET);
        }
    });
}

TEST(StreamAvailable, NotWhileAnotherFiberWaitsInARead) {
    weft::run([] {
        Plain c;
        auto reader = weft::spawn([&] { return c.s.read(); });
        weft::sleep(1ms);  // the reader is waiting now
        EXPECT_THROW(c.s.available(), weft::InvalidStateError);
        ASSERT_EQ(::send(c.peer, "for the reader", 14, MSG_NOSIGNAL), 14);
        EXPECT_EQ(reader.get(), "for the reader");
        EXPECT_EQ(available_now(c.s), 0u);
    });
}

TEST(StreamAvailable, ClosedOrMovedFromStreamRaises) {
    weft::run([] {
        Plain c;
        weft::Stream moved = std::move(c.s);
        EXPECT_THROW(c.s.available(), weft::InvalidStateError);
        moved.close();
        EXPECT_THROW(moved.available(), weft::InvalidStateError);
    });
}

namespace {

// A TLS connection through a relay the test holds: server (the Stream under test, its
// raw end `to_server`) <-> the test <-> client (its raw end `from_client`). Two pumps
// carry the handshake; then the client-to-server one stops and the test delivers the
// client's records itself, whole or in part. Server-to-client keeps pumping (TLS 1.3
// session tickets go that way after the handshake).
struct Relayed {
    std::pair<int, int> a = tcp_pair(), b = tcp_pair();
    weft::Stream server{weft::Loop::current(), a.first};
    weft::Stream to_server{weft::Loop::current(), a.second};
    weft::Stream client{weft::Loop::current(), b.first};
    weft::Stream from_client{weft::Loop::current(), b.second};
    weft::Task<void> up, down;

    static void pump(weft::Stream& from, weft::Stream& to) {
        try {
            for (std::string piece; !(piece = from.read()).empty();) to.write(piece);
        } catch (const weft::Error&) {  // a side closed at the test's end
        }
    }

    explicit Relayed(Version version) {
        up = weft::spawn([this] { pump(from_client, to_server); });
        down = weft::spawn([this] { pump(to_server, from_client); });
        weft::ssl::Context server_ctx = weft::test::server_context();
        server_ctx.set_maximum_version(version);
        server_ctx.set_minimum_version(version);
        auto handshake = weft::spawn([&] { server.start_tls(server_ctx, {.server_side = true}); });
        client.start_tls(weft::test::client_context(), {.server_hostname = "localhost"});
        handshake.get();
        up.cancel();  // waiting in from_client.read(): nothing in hand is lost
        try {
            up.get();
        } catch (const weft::Cancelled&) {
        }
    }
    ~Relayed() {
        down.cancel();
        try {
            down.get();
        } catch (const weft::Cancelled&) {
        }
    }

    // The client's next record as it left, header and all.
    std::string next_record() {
        std::string head = weft::timeout(5s, [&] { return from_client.read_exactly(5); });
        size_t length = size_t(uint8_t(head[3])) << 8 | uint8_t(head[4]);
        return head + weft::timeout(5s, [&] { return from_client.read_exactly(length); });
    }
    // Into the server's socket, and there by the time this returns.
    void deliver(std::string_view bytes) {
        to_server.write(bytes);
        ASSERT_EQ(to_server.buffered(), 0u);
        ASSERT_TRUE(in_socket(server.fd()));
    }
};

class StreamAvailableTls : public testing::TestWithParam<Version> {};

}  // namespace

TEST_P(StreamAvailableTls, NothingSentIsZero) {
    weft::run([] {
        Relayed r(GetParam());
        EXPECT_EQ(available_now(r.server), 0u);
        EXPECT_FALSE(r.server.at_eof());
    });
}

TEST_P(StreamAvailableTls, ApplicationDataWaitingIsDecryptedAndCounted) {
    weft::run([] {
        Relayed r(GetParam());
        r.client.write("hello");
        r.deliver(r.next_record());
        EXPECT_EQ(available_now(r.server), 5u);
        EXPECT_EQ(weft::timeout(2s, [&] { return r.server.read(); }), "hello");
        EXPECT_EQ(available_now(r.server), 0u);
    });
}

TEST_P(StreamAvailableTls, APartialRecordIsNothingYet) {
    weft::run([] {
        Relayed r(GetParam());
        r.client.write("hello");
        std::string record = r.next_record();
        r.deliver(record.substr(0, 8));  // ciphertext in the socket, no whole record
        EXPECT_EQ(available_now(r.server), 0u);
        EXPECT_FALSE(r.server.at_eof());
        EXPECT_EQ(available_now(r.server), 0u);
        r.deliver(record.substr(8));
        EXPECT_EQ(available_now(r.server), 5u);
        EXPECT_EQ(weft::timeout(2s, [&] { return r.server.read(); }), "hello");
    });
}

TEST_P(StreamAvailableTls, CountsWhatAReadUntilLeftBuffered) {
    weft::run([] {
        Relayed r(GetParam());
        r.client.write("line\nrest");
        r.deliver(r.next_record());
        EXPECT_EQ(r.server.read_until("\n"), "line\n");
        EXPECT_EQ(available_now(r.server), 4u);
        EXPECT_EQ(r.server.read(), "rest");
    });
}

TEST_P(StreamAvailableTls, CloseNotifyAloneIsEof) {
    weft::run([] {
        Relayed r(GetParam());
        r.client.write("last");
        r.deliver(r.next_record());
        r.client.write_eof();  // close_notify, then the FIN, which the test keeps back
        r.deliver(r.next_record());
        EXPECT_EQ(available_now(r.server), 4u);
        EXPECT_EQ(r.server.read(), "last");
        EXPECT_EQ(available_now(r.server), 0u);
        EXPECT_TRUE(r.server.at_eof());
        EXPECT_EQ(r.server.read(), "");  // a clean end: no SslError
    });
}

TEST_P(StreamAvailableTls, EofWithoutCloseNotifyRaisesAsAReadWould) {
    weft::run([] {
        Relayed r(GetParam());
        r.to_server.write_eof();
        ASSERT_TRUE(in_socket(r.server.fd()));
        EXPECT_THROW(r.server.available(), weft::ssl::SslError);
        EXPECT_THROW(r.server.read(), weft::ssl::SslError);
        EXPECT_THROW(r.server.available(), weft::ssl::SslError);
    });
}

// The client's side after a TLS 1.3 handshake: the server's session tickets arrive after
// it, and they are no data (a connection pool must not take them for an unasked answer).
// TLS 1.2 sends its ticket inside the handshake.
TEST(StreamAvailable, TlsSessionTicketsAreNoData) {
    weft::run([] {
        Relayed r(Version::tls1_3);
        ASSERT_TRUE(in_socket(r.client.fd()));
        EXPECT_EQ(available_now(r.client), 0u);
        EXPECT_FALSE(r.client.at_eof());
    });
}

INSTANTIATE_TEST_SUITE_P(Versions, StreamAvailableTls, testing::Values(Version::tls1_2, Version::tls1_3),
                         [](const auto& info) { return info.param == Version::tls1_2 ? "Tls12" : "Tls13"; });
