// TCP streams and servers on loopback: echo, the read forms and their errors, half-close
// both ways, refused connections, names (resolved on their own pool) and address lists,
// IPv6, TCP_NODELAY, cancellation mid-read and mid-connect, a checksummed bulk transfer,
// and drain's bound on buffered memory.
#include <weft/weft.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/detail/platform.hpp"

#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
// A server that echoes every line back; returns it running on 127.0.0.1 with a free port.
std::unique_ptr<weft::Server> line_echo_server(const std::string& host = "127.0.0.1") {
    return weft::start_server(
        [](weft::Stream& s) {
            for (;;) {
                std::string line = s.read_line();
                if (line.empty()) return;  // EOF
                s.write(line);
                s.drain();
            }
        },
        host, 0);
}

uint64_t fnv1a(std::string_view data, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
    return h;
}

// A listener that never accepts, with its backlog full: the kernel drops further SYNs, so
// a connect to it hangs — on loopback, with no outside network involved.
struct FullBacklogListener {
    int fd = -1;
    weft::SocketAddress addr = weft::SocketAddress::ip("127.0.0.1", 0);
    std::vector<int> fillers;

    // False if the backlog could not be seen to fill.
    bool fill() {
        fd = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || ::bind(fd, addr.get(), addr.size()) != 0 || ::listen(fd, 0) != 0)
            return false;
        socklen_t len = weft::SocketAddress::capacity();
        ::getsockname(fd, addr.get(), &len);
        addr.set_size(len);
        std::vector<pollfd> pending;
        for (int i = 0; i < 8; ++i) {
            int c = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
            if (c < 0) return false;
            ::connect(c, addr.get(), addr.size());
            fillers.push_back(c);
            pending.push_back({c, POLLOUT, 0});
        }
        // listen(0) queues one connection (Linux and gVisor alike): once a filler has
        // completed its handshake the queue is full. Waiting for that, instead of sleeping,
        // holds on a slow machine too.
        return ::poll(pending.data(), nfds_t(pending.size()), 10'000) > 0;
    }
    ~FullBacklogListener() {
        for (int c : fillers) ::close(c);
        if (fd >= 0) ::close(fd);
    }
};

int open_fd_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

int nodelay_of(int fd) {
    int on = -1;
    socklen_t len = sizeof on;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return -1;
    return on;
}

// A port on 127.0.0.1 that nobody listens on (a server's, just closed).
uint16_t dead_port() {
    auto probe = weft::start_server([](weft::Stream&) {}, "127.0.0.1", 0);
    uint16_t port = probe->port();
    probe->close();
    probe->wait_closed();
    return port;
}

bool ipv6_loopback_available() {
    int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return false;
    auto any = weft::SocketAddress::ip("::1", 0);
    bool ok = ::bind(fd, any.get(), any.size()) == 0;
    ::close(fd);
    return ok;
}
}  // namespace

TEST(Tcp, EchoLines) {
    weft::run([] {
        auto server = line_echo_server();
        ASSERT_NE(server->port(), 0);
        auto client = weft::open_connection("127.0.0.1", server->port());
        EXPECT_EQ(client.peer_address().to_string(), "127.0.0.1:" + std::to_string(server->port()));
        for (int i = 0; i < 10; ++i) {
            client.write("hello " + std::to_string(i) + "\n");
            EXPECT_EQ(client.read_line(), "hello " + std::to_string(i) + "\n");
        }
        client.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, ReadFormsAndTheirErrors) {
    weft::run([] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                s.write("abc|defgh|" + std::string(100, 'x'));
                s.write_eof();
            },
            "127.0.0.1", 0);
        weft::ConnectOptions options;
        options.stream.limit = 50;
        auto c = weft::open_connection("127.0.0.1", server->port(), options);
        EXPECT_EQ(c.read_until("|"), "abc|");
        EXPECT_EQ(c.read_exactly(3), "def");
        EXPECT_EQ(c.read_until("|"), "gh|");
        EXPECT_THROW(c.read_until("|"), weft::LimitOverrunError);  // 100 bytes, no separator
        try {
            c.read_exactly(1000);
            FAIL();
        } catch (const weft::IncompleteReadError& e) {
            EXPECT_EQ(e.partial(), std::string(100, 'x'));
            EXPECT_EQ(e.expected(), 1000u);
        }
        EXPECT_TRUE(c.at_eof());
        EXPECT_EQ(c.read(), "");
        EXPECT_EQ(c.read_line(), "");
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, HalfCloseBothWays) {
    weft::run([] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                std::string all = s.read_all();  // until the client's write_eof
                s.write("got " + std::to_string(all.size()));
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        c.write(std::string(10000, 'a'));
        c.write_eof();
        EXPECT_THROW(c.write("more"), weft::InvalidStateError);
        EXPECT_EQ(c.read_all(), "got 10000");  // our read side still works
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, ConnectionRefusedCarriesErrnoAndAddress) {
    weft::run([] {
        uint16_t port;
        {
            auto probe = weft::start_server([](weft::Stream&) {}, "127.0.0.1", 0);
            port = probe->port();
            probe->close();
            probe->wait_closed();
        }
        try {
            weft::open_connection("127.0.0.1", port);
            FAIL();
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), ECONNREFUSED);
            EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
                << e.what();
        }
    });
}

TEST(Tcp, CancelMidReadLeavesTheStreamUsable) {
    weft::run([] {
        auto server = line_echo_server();
        auto c = weft::open_connection("127.0.0.1", server->port());
        auto reader = weft::spawn([&] { return c.read_line(); });
        weft::sleep(2ms);
        reader.cancel();
        EXPECT_THROW(reader.get(), weft::Cancelled);
        c.write("still works\n");
        EXPECT_EQ(c.read_line(), "still works\n");
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, BulkTransferChecksummed) {
    weft::run([] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                for (;;) {
                    std::string chunk = s.read(256 * 1024);
                    if (chunk.empty()) break;
                    s.write(chunk);
                    s.drain();
                }
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        const size_t total = 100 * 1024 * 1024;
        uint64_t sent_hash = 1469598103934665603ull, got_hash = sent_hash;
        auto reader = weft::spawn([&] {
            size_t got = 0;
            while (got < total) {
                std::string chunk = c.read(1 << 20);
                if (chunk.empty()) break;
                got_hash = fnv1a(chunk, got_hash);
                got += chunk.size();
            }
            return got;
        });
        std::string block(64 * 1024, '\0');
        for (size_t sent = 0; sent < total; sent += block.size()) {
            for (size_t i = 0; i < block.size(); i += 97) block[i] = char((sent + i) * 31);
            sent_hash = fnv1a(block, sent_hash);
            c.write(block);
            c.drain();
            EXPECT_LE(c.buffered(), 64u * 1024);  // drain keeps memory bounded (high water)
        }
        EXPECT_EQ(reader.get(), total);
        EXPECT_EQ(got_hash, sent_hash);
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, SlowReaderKeepsTheWriterBounded) {
    weft::run([] {
        weft::Event go;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                go.wait();  // does not read for a while
                while (!s.read(1 << 20).empty()) {
                }
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        auto writer = weft::spawn([&] {
            std::string block(64 * 1024, 'w');
            for (int i = 0; i < 200; ++i) {  // 12.5 MB: far more than the socket buffers
                c.write(block);
                c.drain();
                EXPECT_LE(c.buffered(), 64u * 1024 + block.size());
            }
            c.write_eof();
        });
        weft::sleep(20ms);
        EXPECT_FALSE(writer.done());  // blocked in drain, not buffering without bound
        EXPECT_LE(c.buffered(), 64u * 1024 + 64 * 1024);
        go.set();
        writer.get();
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, ServerCloseWaitsForConnections) {
    weft::run([] {
        std::vector<std::string> log;
        bool handling = false;
        weft::Event closed;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                s.read_line();
                handling = true;
                closed.wait();  // still running when the server closes, however late that is
                weft::sleep(5ms);
                log.push_back("handler done");
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        c.write("x\n");
        // Until the handler has the line: a fixed sleep can end before the connection is
        // even accepted on a stalled CI machine.
        ASSERT_TRUE(weft::testing::wait_until([&] { return handling; }));
        server->close();
        closed.set();
        EXPECT_FALSE(server->is_serving());
        EXPECT_THROW(weft::open_connection("127.0.0.1", server->port()), weft::SystemError);
        server->wait_closed();
        EXPECT_EQ(log, std::vector<std::string>{"handler done"});
    });
}

TEST(Tcp, AcceptSurvivesEmfileAndRecovers) {
    weft::run([] {
        auto& loop = weft::Loop::current();
        std::vector<std::string> reports;
        loop.set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { reports.push_back(c.message); });
        int handled = 0;
        auto server = weft::start_server([&](weft::Stream&) { ++handled; }, "127.0.0.1", 0);
        auto target = weft::SocketAddress::ip("127.0.0.1", server->port());
        // Client sockets first (their fds exist before the limit drops), then connect:
        // the kernel completes the handshakes into the backlog without an accept.
        std::vector<int> clients;
        for (int i = 0; i < 4; ++i) {
            int fd = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
            ASSERT_GE(fd, 0);
            ::connect(fd, target.get(), target.size());
            clients.push_back(fd);
        }
        rlimit saved{};
        ::getrlimit(RLIMIT_NOFILE, &saved);
        int lowest_free = 0;  // new fds take the lowest free number: keep it out of reach
        while (::fcntl(lowest_free, F_GETFD) >= 0) ++lowest_free;
        rlimit low = saved;
        low.rlim_cur = rlim_t(lowest_free);  // no fd left for accept
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
        // Bounded by time, not by a count of short sleeps (a loaded machine may complete
        // the handshakes late).
        weft::testing::wait_until([&] { return !reports.empty(); });
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
        EXPECT_FALSE(reports.empty());
        if (!reports.empty()) {
            EXPECT_NE(reports[0].find("Too many open files"), std::string::npos) << reports[0];
        }
        EXPECT_LT(reports.size(), 10u);  // backing off, not spinning
        weft::testing::wait_until([&] { return handled == 4; });  // recovers
        EXPECT_EQ(handled, 4);
        for (int fd : clients) ::close(fd);
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, ConnectTimeout) {
    weft::run([] {
        // A listener that never accepts, with its backlog full: further SYNs are dropped,
        // so a connect hangs — on loopback, with no outside network involved.
        int listener = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
        auto addr = weft::SocketAddress::ip("127.0.0.1", 0);
        ASSERT_EQ(::bind(listener, addr.get(), addr.size()), 0);
        ASSERT_EQ(::listen(listener, 0), 0);
        socklen_t len = weft::SocketAddress::capacity();
        ::getsockname(listener, addr.get(), &len);
        addr.set_size(len);
        std::vector<int> fillers;
        for (int i = 0; i < 8; ++i) {
            int fd = weft::detail::open_socket(AF_INET, SOCK_STREAM, 0);
            ::connect(fd, addr.get(), addr.size());
            fillers.push_back(fd);
        }
        weft::sleep(20ms);  // let the handshakes that can complete, complete
        weft::ConnectOptions options;
        options.timeout = 100ms;
        auto start = weft::Clock::now();
        EXPECT_THROW(weft::open_connection("127.0.0.1", addr.port(), options), weft::TimeoutError);
        EXPECT_GE(weft::Clock::now() - start, 90ms);
        for (int fd : fillers) ::close(fd);
        ::close(listener);
    });
}

TEST(Tcp, CancelMidDrainLeavesNoRegistration) {
    weft::run([] {
        weft::Event go;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                go.wait();
                while (!s.read(1 << 20).empty()) {
                }
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        auto writer = weft::spawn([&] {
            std::string block(256 * 1024, 'w');
            for (;;) {
                c.write(block);
                c.drain();  // blocks: nobody reads
            }
        });
        weft::sleep(10ms);
        writer.cancel();
        EXPECT_THROW(writer.get(), weft::Cancelled);
        go.set();
        c.drain();  // the stream still works: what was buffered goes out
        c.write_eof();
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, HandlerExceptionIsReportedAndTheClientSeesTheClose) {
    weft::run([] {
        std::vector<std::string> reports;
        weft::Loop::current().set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { reports.push_back(c.message); });
        auto server = weft::start_server(
            [](weft::Stream& s) {
                s.read_line();
                throw std::runtime_error("handler bug");
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        c.write("x\n");
        EXPECT_EQ(c.read_all(), "");  // closed at once, not when the next client arrives
        ASSERT_EQ(reports.size(), 1u);
        EXPECT_EQ(reports[0], "Exception in connection handler");
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, DestroyingAStreamWhileAFiberReadsItWakesThatFiber) {
    weft::run([] {
        auto server = line_echo_server();
        auto c = std::make_unique<weft::Stream>(weft::open_connection("127.0.0.1", server->port()));
        auto reader = weft::spawn([&] { return c->read_line(); });
        weft::sleep(1ms);
        c.reset();  // the reader must fail cleanly, not run on freed memory
        EXPECT_THROW(reader.get(), weft::InvalidStateError);
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, StartServerWhereNoAddressFamilyWorksThrowsNamingThem) {
    weft::run([] {
        sockaddr odd_family{};
        odd_family.sa_family = 200;  // no such family: socket() fails with EAFNOSUPPORT
        weft::SocketAddress odd(&odd_family, sizeof odd_family);
        try {
            // Each address alone may be skipped (a host without IPv6); all of them may not.
            auto server = weft::start_server([](weft::Stream&) {}, {odd, odd});
            FAIL() << "a server listening on nothing: " << server->addresses().size()
                   << " addresses";
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), EAFNOSUPPORT) << e.what();
            EXPECT_NE(std::string(e.what()).find("(address family 200)"), std::string::npos)
                << e.what();
        }
    });
}

TEST(Tcp, ResolveLocalhostByName) {
    weft::run([] {
        // Not numeric: this goes to getaddrinfo on the worker pool (/etc/hosts here).
        auto addresses = weft::resolve("localhost", 4242);
        ASSERT_FALSE(addresses.empty());
        for (const auto& a : addresses) {
            EXPECT_EQ(a.port(), 4242);
            EXPECT_TRUE(a.host() == "127.0.0.1" || a.host() == "::1") << a.to_string();
        }
    });
}

TEST(Tcp, ResolveKeepsWorkingWhileTheDefaultPoolIsBlocked) {
    weft::run([] {
        // Every worker of the default pool blocked, and more jobs queued behind them: name
        // resolution has a pool of its own, so it does not wait for them.
        std::atomic<bool> release{false};
        std::vector<weft::Future<void>> blockers;
        size_t workers = weft::detail::default_executor(weft::Loop::current()).size();
        for (size_t i = 0; i < workers + 2; ++i)
            blockers.push_back(weft::run_in_executor(nullptr, [&] {
                while (!release.load()) std::this_thread::sleep_for(1ms);
            }));
        std::vector<weft::SocketAddress> addresses;
        try {
            // Generous for a loaded machine; before, this waited for the blockers: for ever.
            addresses = weft::timeout(10s, [] { return weft::resolve("localhost", 4242); });
        } catch (const weft::TimeoutError&) {
            ADD_FAILURE() << "resolve waited for the default pool's jobs";
        }
        release = true;
        weft::gather(blockers);
        EXPECT_FALSE(addresses.empty());
    });
}

TEST(Tcp, OpenConnectionByName) {
    weft::run([] {
        auto server = line_echo_server("localhost");  // every address localhost has, one port
        auto c = weft::open_connection("localhost", server->port());
        c.write("by name\n");
        EXPECT_EQ(c.read_line(), "by name\n");
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, OpenConnectionTriesEachAddressInTurn) {
    weft::run([] {
        auto dead = weft::SocketAddress::ip("127.0.0.1", dead_port());
        auto server = line_echo_server();
        auto live = weft::SocketAddress::ip("127.0.0.1", server->port());
        auto c = weft::open_connection(std::vector{dead, dead, live});
        EXPECT_EQ(c.peer_address().to_string(), live.to_string());
        c.write("third time lucky\n");
        EXPECT_EQ(c.read_line(), "third time lucky\n");
        try {
            weft::open_connection(std::vector{dead, dead});
            FAIL() << "connected to nobody";
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), ECONNREFUSED);
            std::string refused = dead.to_string() + " (" + std::strerror(ECONNREFUSED) + ")";
            EXPECT_NE(std::string(e.what()).find(refused + ", " + refused), std::string::npos)
                << "both attempts named: " << e.what();
        }
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, Ipv6ServerAndConnection) {
    if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1) on this host";
    weft::run([] {
        auto server = line_echo_server("::1");
        ASSERT_EQ(server->addresses().size(), 1u);
        EXPECT_EQ(server->addresses()[0].family(), AF_INET6);
        auto c = weft::open_connection("::1", server->port());
        EXPECT_EQ(c.peer_address().to_string(), "[::1]:" + std::to_string(server->port()));
        c.write("over v6\n");
        EXPECT_EQ(c.read_line(), "over v6\n");
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, NodelayIsOnByDefaultOnBothSides) {
    weft::run([] {
        int accepted_side = -2;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                accepted_side = nodelay_of(s.fd());
                s.write("x");
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        EXPECT_GT(nodelay_of(c.fd()), 0);
        EXPECT_EQ(c.read_all(), "x");  // the handler has run
        EXPECT_GT(accepted_side, 0);
        // The option is what sets it, not the system's default.
        weft::ConnectOptions off;
        off.stream.nodelay = false;
        auto d = weft::open_connection("127.0.0.1", server->port(), off);
        EXPECT_EQ(nodelay_of(d.fd()), 0);
        c.close();
        d.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, CancelWhileConnectingClosesTheSocketAndTheLoopGoesOn) {
    weft::run([] {
        FullBacklogListener hung;
        ASSERT_TRUE(hung.fill()) << "no filler connection completed";
        const int fds_before = open_fd_count();
        auto connecting = weft::spawn([&] { return weft::open_connection(hung.addr); });
        weft::sleep(0ms);  // a yield: the task runs until its connect suspends
        ASSERT_FALSE(connecting.done()) << "the connect did not hang: the backlog had room";
        connecting.cancel();
        EXPECT_THROW(connecting.get(), weft::Cancelled);
        EXPECT_EQ(open_fd_count(), fds_before) << "the half-open socket was not closed";
        // The loop goes on: timers fire and a normal connection works.
        weft::sleep(1ms);
        auto server = line_echo_server();
        auto c = weft::open_connection("127.0.0.1", server->port());
        c.write("after the cancel\n");
        EXPECT_EQ(c.read_line(), "after the cancel\n");
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST(Tcp, HalfCloseServerFirstThenClient) {
    weft::run([] {
        const std::string to_client(300 * 1024, 's'), first(1000, 'a'), second(200 * 1024, 'b');
        std::string server_got;
        bool server_saw_eof = false;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                server_got = s.read_exactly(first.size());
                s.write(to_client);
                s.write_eof();               // our write side shut; our read side stays open
                server_got += s.read_all();  // the rest, until the client's write_eof
                server_saw_eof = s.at_eof();
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        c.write(first);
        EXPECT_EQ(c.read_all(), to_client);  // everything, then the server's EOF
        EXPECT_TRUE(c.at_eof());
        c.write(second);  // the peer's EOF does not shut our write side
        c.write_eof();
        server->close();
        server->wait_closed();  // the handler has finished
        EXPECT_EQ(server_got.size(), first.size() + second.size());
        EXPECT_TRUE(server_got == first + second);
        EXPECT_TRUE(server_saw_eof);
    });
}
