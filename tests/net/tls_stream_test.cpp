// TLS streams, weft against weft on loopback: every Stream behaviour over TLS 1.2 and 1.3
// (the read forms and their limits, write / writev / drain backpressure, half-close,
// close_notify, a peer's EOF without it, abort), start_tls on a plain connection, Unix
// sockets, ALPN, the Context rules, handshake timeouts and cancellation mid-handshake.
// The peers that are not weft are in tls_peer_test.cpp, the hostile ones in
// tls_hostile_test.cpp.
#include <weft/weft.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "../common/tls_certs.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using weft::ssl::Context;
using weft::ssl::Version;

namespace {

const weft::test::TestCerts& certs() { return weft::test::TestCerts::get(); }

Context server_context(Version max = Version::tls1_3) {
    Context ctx = weft::test::server_context();
    ctx.set_maximum_version(max);
    return ctx;
}

using weft::test::client_context;

weft::ConnectOptions tls_to_localhost() {
    return {.ssl = client_context(), .server_hostname = "localhost"};
}

std::unique_ptr<weft::Server> tls_server(weft::Server::Handler handler, Version max = Version::tls1_3) {
    return weft::start_server(std::move(handler), "127.0.0.1", 0, {.ssl = server_context(max)});
}

uint64_t fnv1a(std::string_view data, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
    return h;
}

class TlsVersions : public testing::TestWithParam<Version> {};

}  // namespace

TEST_P(TlsVersions, ReadFormsAndLimitsOverTls) {
    weft::run([] {
        auto server = tls_server(
            [](weft::Stream& s) {
                s.write("line one\nABCDEFrest|");
                s.write(std::string(100, 'x') + "\n");
                s.writev({"part1 ", "part2 ", "part3\n"});
                s.drain();
                s.read_all();  // until the client closes
            },
            GetParam());
        weft::ConnectOptions options = tls_to_localhost();
        options.stream.limit = 50;
        auto c = weft::open_connection("127.0.0.1", server->port(), options);
        EXPECT_TRUE(c.is_tls());
        EXPECT_EQ(c.tls_version(), GetParam() == Version::tls1_3 ? "TLSv1.3" : "TLSv1.2");
        EXPECT_FALSE(c.tls_cipher().empty());
        EXPECT_EQ(c.read_line(), "line one\n");
        EXPECT_EQ(c.read_exactly(6), "ABCDEF");
        EXPECT_EQ(c.read_until("|"), "rest|");
        EXPECT_THROW(c.read_line(), weft::LimitOverrunError);  // 101 bytes > limit 50
        EXPECT_EQ(c.read_line(), "part1 part2 part3\n");
        c.close();
        server->close();
        server->wait_closed();
    });
}

TEST_P(TlsVersions, BulkTransferWithBackpressureArrivesIntact) {
    weft::run([] {
        const size_t total = 8 * 1024 * 1024;
        std::string data(total, '\0');
        for (size_t i = 0; i < total; ++i) data[i] = char((i * 131) ^ (i >> 9));
        uint64_t got_hash = 0;
        size_t max_buffered = 0;
        weft::Event server_reads;
        auto server = tls_server(
            [&](weft::Stream& s) {
                server_reads.wait();  // the client's drain must hold it back meanwhile
                std::string all = s.read_exactly(total);
                got_hash = fnv1a(all);
                s.write("ok");
            },
            GetParam());
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        weft::create_task(weft::Loop::current(), [&] {
            weft::sleep(50ms);
            server_reads.set();
        });
        for (size_t off = 0; off < total; off += 100000) {
            c.write(std::string_view(data).substr(off, 100000));
            max_buffered = std::max(max_buffered, c.buffered());
            c.drain();
        }
        EXPECT_EQ(c.read_exactly(2), "ok");
        EXPECT_EQ(got_hash, fnv1a(data));
        // drain kept the buffer near the high-water mark (64 KiB + one write's records).
        EXPECT_LT(max_buffered, 64 * 1024 + 2 * 100000);
        server->close();
        server->wait_closed();
    });
}

TEST_P(TlsVersions, CloseSendsCloseNotifySoThePeerSeesACleanEof) {
    weft::run([] {
        auto server = tls_server([](weft::Stream& s) { s.write("bye"); }, GetParam());  // then close()
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        EXPECT_EQ(c.read_all(), "bye");  // EOF by close_notify: no SslError
        EXPECT_TRUE(c.at_eof());
        server->close();
        server->wait_closed();
    });
}

TEST_P(TlsVersions, HalfCloseSendsCloseNotifyAndKeepsReading) {
    weft::run([] {
        auto server = tls_server(
            [](weft::Stream& s) {
                std::string all = s.read_all();  // ends at the client's close_notify
                s.write("got " + std::to_string(all.size()));
            },
            GetParam());
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        c.write(std::string(100000, 'a'));
        c.write_eof();
        EXPECT_THROW(c.write("more"), weft::InvalidStateError);
        EXPECT_EQ(c.read_all(), "got 100000");
        server->close();
        server->wait_closed();
    });
}

TEST_P(TlsVersions, EofWithoutCloseNotifyIsAnSslErrorAfterTheData) {
    weft::run([] {
        auto server = tls_server(
            [](weft::Stream& s) {
                s.write("data");
                s.drain();
                ::shutdown(s.fd(), SHUT_WR);  // a FIN under TLS's feet: no close_notify
                s.read_all();
            },
            GetParam());
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        EXPECT_EQ(c.read_exactly(4), "data");
        try {
            c.read();
            FAIL() << "a truncated TLS stream read as a clean EOF";
        } catch (const weft::ssl::SslError& e) {
            EXPECT_EQ(e.reason(), "unexpected eof while reading");
            EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(server->port())), std::string::npos)
                << e.what();
        }
        EXPECT_TRUE(c.at_eof());
        c.close();
        server->close();
        server->wait_closed();
    });
}

INSTANTIATE_TEST_SUITE_P(Tls, TlsVersions, testing::Values(Version::tls1_2, Version::tls1_3),
                         [](const auto& info) { return info.param == Version::tls1_3 ? "TLS13" : "TLS12"; });

TEST(Tls, AbortSendsNoCloseNotify) {
    weft::run([] {
        auto server = tls_server([](weft::Stream& s) {
            s.read_exactly(1);
            s.abort();
        });
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        c.write("x");
        // A reset, or an EOF without close_notify: either way not a clean end.
        EXPECT_ANY_THROW(c.read_all());
        server->close();
        server->wait_closed();
    });
}

TEST(Tls, StartTlsUpgradesAPlainConnection) {
    weft::run([] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                EXPECT_EQ(s.read_line(), "STARTTLS\n");
                s.write("GO\n");
                s.start_tls(server_context(), {.server_side = true});
                s.write("secret: " + s.read_line());
            },
            "127.0.0.1", 0);
        auto c = weft::open_connection("127.0.0.1", server->port());
        c.write("STARTTLS\n");
        EXPECT_EQ(c.read_line(), "GO\n");
        EXPECT_FALSE(c.is_tls());
        c.start_tls(client_context(), {.server_hostname = "localhost"});
        EXPECT_TRUE(c.is_tls());
        c.write("hello\n");
        EXPECT_EQ(c.read_all(), "secret: hello\n");
        EXPECT_THROW(c.start_tls(client_context(), {.server_hostname = "localhost"}), weft::InvalidStateError);
        server->close();
        server->wait_closed();
    });
}

TEST(Tls, UnixSockets) {
    weft::run([] {
        std::string path = certs().dir() + "/tls.sock";
        auto server = weft::start_unix_server([](weft::Stream& s) { s.write("over unix: " + s.read_line()); }, path,
                                              {.ssl = server_context()});
        auto c = weft::open_unix_connection(path, tls_to_localhost());
        c.write("hi\n");
        EXPECT_EQ(c.read_all(), "over unix: hi\n");
        // No host name to check: an error before anything is sent.
        EXPECT_THROW(weft::open_unix_connection(path, {.ssl = client_context()}), weft::Error);
        server->close();
        server->wait_closed();
        ::unlink(path.c_str());
    });
}

TEST(Tls, AlpnPicksTheServersFirstChoiceTheClientOffers) {
    weft::run([] {
        Context sctx = server_context();
        sctx.set_alpn_protocols({"h2", "http/1.1"});
        auto server = weft::start_server([](weft::Stream& s) { s.write(s.selected_alpn_protocol()); }, "127.0.0.1",
                                         0, {.ssl = sctx});
        Context cctx = client_context();
        cctx.set_alpn_protocols({"http/1.1", "spdy/1"});
        auto c = weft::open_connection("127.0.0.1", server->port(), {.ssl = cctx, .server_hostname = "localhost"});
        EXPECT_EQ(c.selected_alpn_protocol(), "http/1.1");
        EXPECT_EQ(c.read_all(), "http/1.1");
        server->close();
        server->wait_closed();
    });
}

TEST(Tls, ContextFollowsPythonsRules) {
    Context c = Context::client();
    EXPECT_TRUE(c.check_hostname());
    EXPECT_EQ(c.verify_mode(), weft::ssl::Verify::required);
    EXPECT_THROW(c.set_verify_mode(weft::ssl::Verify::none), weft::InvalidStateError);
    c.set_check_hostname(false);
    c.set_verify_mode(weft::ssl::Verify::none);
    c.set_check_hostname(true);  // turns verification back on, as Python does
    EXPECT_EQ(c.verify_mode(), weft::ssl::Verify::required);
    Context u = Context::unverified_client();
    EXPECT_FALSE(u.check_hostname());
    EXPECT_EQ(u.verify_mode(), weft::ssl::Verify::none);
    EXPECT_FALSE(c.is_server());
    EXPECT_TRUE(Context::server().is_server());
    try {
        Context::server().load_cert_chain(certs().path("missing.pem"));
        FAIL();
    } catch (const weft::ssl::SslError& e) {
        EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
    }
    // A key that is not the certificate's.
    EXPECT_THROW(Context::server().load_cert_chain(certs().cert("server"), certs().key("client")),
                 weft::ssl::SslError);
}

TEST(Tls, UntrustedCertificateNamesPeerHostAndReason) {
    weft::run([] {
        auto server = tls_server([](weft::Stream&) {});
        try {
            weft::open_connection("127.0.0.1", server->port(), {.ssl = Context::client(), .server_hostname = "localhost"});
            FAIL();
        } catch (const weft::ssl::CertificateError& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("127.0.0.1:" + std::to_string(server->port())), std::string::npos) << what;
            EXPECT_NE(what.find("'localhost'"), std::string::npos) << what;
            EXPECT_NE(what.find("certificate verify failed: unable to get local issuer certificate"), std::string::npos)
                << what;
            EXPECT_EQ(e.verify_message(), "unable to get local issuer certificate");
        }
        // The server goes on serving everyone else.
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        EXPECT_TRUE(c.is_tls());
        server->close();
        server->wait_closed();
    });
}

TEST(Tls, HandshakeTimeoutAndCancellationLeaveNothingOpen) {
    weft::run([] {
        weft::Event release;
        // A plain server that accepts and never answers the ClientHello.
        auto silent = weft::start_server([&](weft::Stream& s) { release.wait(); s.abort(); }, "127.0.0.1", 0);
        weft::ConnectOptions options = tls_to_localhost();
        options.ssl_handshake_timeout = 100ms;
        EXPECT_THROW(weft::open_connection("127.0.0.1", silent->port(), options), weft::TimeoutError);

        // The connect's own timeout bounds the handshake too.
        options.ssl_handshake_timeout = 60s;
        options.timeout = 100ms;
        EXPECT_THROW(weft::open_connection("127.0.0.1", silent->port(), options), weft::TimeoutError);

        auto task = weft::create_task(weft::Loop::current(), [&] { weft::open_connection("127.0.0.1", silent->port(), tls_to_localhost()); });
        weft::sleep(50ms);
        task.cancel();
        EXPECT_THROW(task.get(), weft::Cancelled);
        release.set();
        silent->close();
        silent->wait_closed();
    });  // the fd check of every test proves no socket stayed open
}

TEST(Tls, ServerHandshakeTimeoutFreesAStalledClient) {
    weft::run([] {
        int served = 0;
        auto server = weft::start_server([&](weft::Stream& s) { ++served; s.write("hi"); }, "127.0.0.1", 0,
                                         {.ssl = server_context(), .ssl_handshake_timeout = 100ms});
        auto stalled = weft::open_connection("127.0.0.1", server->port());  // plain TCP, says nothing
        auto t0 = weft::Loop::current().time();
        EXPECT_EQ(stalled.read_all(), "");  // the server gave up on it and closed
        EXPECT_LT(weft::Loop::current().time() - t0, 5s);
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        EXPECT_EQ(c.read_all(), "hi");
        EXPECT_EQ(served, 1);
        server->close();
        server->wait_closed();
    });
}

TEST(Tls, FailedServerHandshakesAreReportedInDebugModeOnly) {
    weft::run([] {
        weft::Loop& loop = weft::Loop::current();
        std::vector<std::string> reports;
        loop.set_exception_handler([&](weft::Loop&, const weft::ExceptionContext& c) {
            std::string what;
            try {
                if (c.exception) std::rethrow_exception(c.exception);
            } catch (const std::exception& e) {
                what = e.what();
            }
            reports.push_back(c.message + " | " + what);
        });
        auto server = tls_server([](weft::Stream& s) { s.write("served"); });
        auto plain_text_client = [&] {
            auto c = weft::open_connection("127.0.0.1", server->port());
            c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            c.read_all();  // the server closes on us (after its alert)
        };
        plain_text_client();
        auto good = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        EXPECT_EQ(good.read_all(), "served");
        EXPECT_TRUE(reports.empty()) << reports[0];
        loop.set_debug(true);
        plain_text_client();
        weft::sleep(20ms);  // the connection's task reports after the client saw the close
        ASSERT_EQ(reports.size(), 1u);
        EXPECT_NE(reports[0].find("TLS handshake failed"), std::string::npos) << reports[0];
        EXPECT_NE(reports[0].find("http request"), std::string::npos) << reports[0];  // OpenSSL's reason
        loop.set_debug(false);
        server->close();
        server->wait_closed();
    });
}

TEST(Tls, CancelledReadAndDrainLeaveTheStreamUsable) {
    weft::run([] {
        weft::Event go;
        auto server = tls_server([&](weft::Stream& s) {
            go.wait();  // not reading: the client's drain blocks
            std::string all = s.read_exactly(4 * 1024 * 1024 + 6);
            s.write("sum " + std::to_string(fnv1a(all)) + "\n");
            s.write(s.read_line());
        });
        auto c = weft::open_connection("127.0.0.1", server->port(), tls_to_localhost());
        auto reader = weft::create_task(weft::Loop::current(), [&] { return c.read(); });
        weft::sleep(20ms);
        reader.cancel();
        EXPECT_THROW(reader.get(), weft::Cancelled);
        std::string big(4 * 1024 * 1024, 'z');
        auto writer = weft::create_task(weft::Loop::current(), [&] {
            c.write(big);
            c.drain();
        });
        weft::sleep(20ms);
        EXPECT_FALSE(writer.done());  // held by drain
        writer.cancel();
        EXPECT_THROW(writer.get(), weft::Cancelled);
        go.set();
        c.write("+tail!");
        c.drain();  // what was buffered goes out, then the rest
        EXPECT_EQ(c.read_line(), "sum " + std::to_string(fnv1a(big + "+tail!")) + "\n");
        c.write("still works\n");
        EXPECT_EQ(c.read_line(), "still works\n");
        server->close();
        server->wait_closed();
    });
}
