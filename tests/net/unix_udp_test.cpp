// Unix domain stream sockets, socketpair streams (drain against a reader that stalls,
// writev, the read_until limit), UDP endpoints, and a loop per core.
#include <weft/weft.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Unix, ServerAndClient) {
    std::string path = "/tmp/weft-test-" + std::to_string(::getpid()) + ".sock";
    weft::run([&] {
        auto server = weft::start_unix_server(
            [](weft::Stream& s) {
                s.write("you said: " + s.read_line());
            },
            path);
        EXPECT_EQ(server->addresses()[0].to_string(), path);
        auto c = weft::open_unix_connection(path);
        c.write("hi\n");
        EXPECT_EQ(c.read_all(), "you said: hi\n");
        server->close();
        server->wait_closed();
        // A stale socket file from an earlier server does not stop a new one.
        auto again = weft::start_unix_server([](weft::Stream&) {}, path);
        again->close();
        again->wait_closed();
    });
    ::unlink(path.c_str());
}

TEST(Unix, StreamPair) {
    weft::run([] {
        auto [a, b] = weft::stream_pair();
        a.write("ping\n");
        EXPECT_EQ(b.read_line(), "ping\n");
        b.write_eof();
        EXPECT_EQ(a.read_all(), "");
    });
}

TEST(Unix, DrainThrowsWhenAnotherFiberClosesWithDataUnsent) {
    weft::run([] {
        auto pair = weft::stream_pair();
        weft::Stream& a = pair.first;  // pair.second never reads
        a.write(std::string(4 << 20, 'x'));  // far more than a socketpair holds
        ASSERT_GT(a.buffered(), 64u * 1024);
        auto drainer = weft::spawn([&a] { a.drain(); });
        weft::sleep(0ms);  // a yield: the drainer runs until it blocks
        ASSERT_FALSE(drainer.done());
        a.close();
        try {
            drainer.get();
            FAIL() << "drain returned as if everything had been sent";
        } catch (const weft::InvalidStateError& e) {
            EXPECT_NE(std::string(e.what()).find("bytes unsent"), std::string::npos) << e.what();
        }
    });
}

TEST(Udp, SendToAndRecvFrom) {
    weft::run([] {
        auto server = weft::DatagramEndpoint::bind(weft::SocketAddress::ip("127.0.0.1", 0));
        auto client = weft::DatagramEndpoint::connect(server.local_address());
        auto echo = weft::spawn([&] {
            for (int i = 0; i < 3; ++i) {
                auto [data, from] = server.recv_from();
                server.send_to("re:" + data, from);
            }
        });
        for (int i = 0; i < 3; ++i) {
            client.send("d" + std::to_string(i));
            auto [reply, from] = client.recv_from();
            EXPECT_EQ(reply, "re:d" + std::to_string(i));
            EXPECT_EQ(from.port(), server.local_address().port());
        }
        echo.get();
        client.close();
        EXPECT_THROW(client.send("x"), weft::InvalidStateError);
    });
}

TEST(Udp, Ipv6Loopback) {
    weft::run([] {
        auto a = weft::DatagramEndpoint::bind(weft::SocketAddress::ip("::1", 0));
        auto b = weft::DatagramEndpoint::bind(weft::SocketAddress::ip("::1", 0));
        a.send_to("over v6", b.local_address());
        auto [data, from] = b.recv_from();
        EXPECT_EQ(data, "over v6");
        EXPECT_EQ(from.to_string(), a.local_address().to_string());
    });
}

TEST(ServerGroup, ConnectionsSpreadOverLoops) {
    std::mutex m;
    std::set<std::thread::id> threads;
    weft::ServerGroup group(
        2,
        [&](weft::Stream& s) {
            {
                std::lock_guard g(m);
                threads.insert(std::this_thread::get_id());
            }
            s.write(s.read_line());
        },
        "127.0.0.1", 0);
    EXPECT_EQ(group.size(), 2u);
    weft::run([&] {
        for (int i = 0; i < 40; ++i) {
            auto c = weft::open_connection("127.0.0.1", group.port());
            c.write("x\n");
            EXPECT_EQ(c.read_line(), "x\n");
        }
    });
    group.close();
    EXPECT_EQ(threads.size(), 2u);  // SO_REUSEPORT hashed 40 connections over both loops
}

TEST(Udp, ErrorFromThePeerIsRaisedOnceThenWaitsNormally) {
    weft::run([] {
        auto probe = weft::DatagramEndpoint::bind(weft::SocketAddress::ip("127.0.0.1", 0));
        auto dead = probe.local_address();
        probe.close();  // nobody listens there now: the kernel answers with ICMP unreachable
        auto c = weft::DatagramEndpoint::connect(dead);
        c.send("anyone?");
        try {
            // The error is there at once; the bound only turns a lost one into a failure,
            // with room for a loaded CI machine that delivers it late.
            weft::timeout(10s, [&] { c.recv_from(); });
            FAIL() << "no error";
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), ECONNREFUSED) << e.what();
        }
        // The error was consumed: the next receive waits (and times out), it does not spin.
        EXPECT_THROW(weft::timeout(30ms, [&] { c.recv_from(); }), weft::TimeoutError);
    });
}
