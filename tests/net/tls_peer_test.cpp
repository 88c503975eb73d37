// TLS against third-party peers on loopback, over TLS 1.2 and TLS 1.3 each: weft's client
// against `openssl s_server` and a Python ssl server; `openssl s_client`, curl and Python's
// ssl module against weft's server; client certificates both ways. The peers are the
// Debian packages scripts/install-deps.sh installs; a test whose peer is missing skips
// with a warning that stands out. Every wait is bounded and every peer killed and reaped.
#include <weft/weft.hpp>

#include <unistd.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "../common/tls_certs.hpp"
#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace ssl = weft::ssl;
using weft::test::TestCerts;

namespace {

constexpr const char* kOpenSsl = "/usr/bin/openssl";
constexpr const char* kCurl = "/usr/bin/curl";
constexpr const char* kPython = "/usr/bin/python3";

// True, after a warning on stderr that stands out in a test log, when the peer at `path`
// is missing: the weft TLS code then goes untested against it on this machine.
bool missing(const char* path, const char* package) {
    if (::access(path, X_OK) == 0) return false;
    std::fprintf(stderr,
                 "\n**********************************************************************\n"
                 "*** SKIPPED: %s is not installed, so weft's TLS is NOT tested\n"
                 "*** against %s on this machine. Install it as root with\n"
                 "***     scripts/install-deps.sh    (or: apt-get install %s)\n"
                 "**********************************************************************\n\n",
                 path, package, package);
    return true;
}

#define REQUIRE_PEER(path, package) \
    if (missing(path, package))     \
    GTEST_SKIP() << path << " not installed (apt-get install " package ")"

struct Tool {
    int status;
    std::string out, err;
};

// Runs a program to completion (20 s at most: on timeout ~Process kills and reaps it).
Tool run_tool(const std::vector<std::string>& argv, std::string input = {}) {
    auto p = weft::create_subprocess_exec(
        argv, {.pipe_stdin = true, .pipe_stdout = true, .pipe_stderr = true});
    auto [out, err] = p.communicate(std::move(input), 20s);
    return {p.returncode().value_or(-1), out, err};
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// The two protocol versions every case runs over, with each peer's spelling of them.
struct TlsCase {
    ssl::Version version;
    const char* name;          // Stream::tls_version()
    const char* openssl_flag;  // s_server / s_client
    std::vector<std::string> curl_flags;
    const char* python;  // ssl.TLSVersion member
};

const TlsCase kTls12{
    ssl::Version::tls1_2, "TLSv1.2", "-tls1_2", {"--tlsv1.2", "--tls-max", "1.2"}, "TLSv1_2"};
const TlsCase kTls13{
    ssl::Version::tls1_3, "TLSv1.3", "-tls1_3", {"--tlsv1.3", "--tls-max", "1.3"}, "TLSv1_3"};

// gtest prints a failing case's parameter with this (else as a dump of its bytes).
void PrintTo(const TlsCase& c, std::ostream* os) {
    *os << c.name;
}

std::string case_name(const testing::TestParamInfo<TlsCase>& info) {
    return info.param.version == ssl::Version::tls1_2 ? "Tls12" : "Tls13";
}

using weft::test::client_context;
using weft::test::server_context;

weft::ConnectOptions tls_to(const ssl::Context& ctx) {
    return {.timeout = 10s, .ssl = ctx};
}

// `openssl s_server` on 127.0.0.1 with a free port (it prints "ACCEPT 127.0.0.1:PORT" on
// stdout; -rev logs each connection on stderr). Its stdin stays open (it would quit at EOF
// in some modes); its output is read on demand, and is far below a pipe's capacity.
class OpenSslServer {
  public:
    explicit OpenSslServer(const std::vector<std::string>& args)
        : p_(weft::create_subprocess_exec(
              argv(args), {.pipe_stdin = true, .pipe_stdout = true, .pipe_stderr = true})) {
        std::string line = next_line(*p_.stdout_pipe(), "ACCEPT");
        port_ = uint16_t(std::stoi(line.substr(line.rfind(':') + 1)));
    }
    ~OpenSslServer() {
        p_.kill();
        p_.wait();
    }
    uint16_t port() const { return port_; }
    // The next line of its stdout / its log (stderr) that contains `what` (10 s at most).
    std::string wait_for_output(const std::string& what) {
        return next_line(*p_.stdout_pipe(), what);
    }
    std::string wait_for_log(const std::string& what) { return next_line(*p_.stderr_pipe(), what); }
    // A line on its stdin: sent to the client, or a command ("K": a key update) in the
    // default mode (neither -rev nor -quiet).
    void input(const std::string& line) {
        p_.stdin_pipe()->write(line + "\n");
        p_.stdin_pipe()->drain();
    }

  private:
    static std::string next_line(weft::Stream& from, const std::string& what) {
        return weft::timeout(10s, [&] {
            for (;;) {
                std::string line = from.read_line();
                if (line.empty())
                    throw std::runtime_error("s_server exited before printing " + what);
                if (contains(line, what)) return line;
            }
        });
    }
    static std::vector<std::string> argv(const std::vector<std::string>& args) {
        const auto& certs = TestCerts::get();
        std::vector<std::string> v = {
            kOpenSsl, "s_server",           "-accept", "127.0.0.1:0",
            "-cert",  certs.cert("server"), "-key",    certs.key("server")};
        v.insert(v.end(), args.begin(), args.end());
        return v;
    }
    weft::Process p_;
    uint16_t port_ = 0;
};

// A one-connection Python ssl server; prints its port first. argv: certfile keyfile mode
// version. The modes end the connection in the ways a weft client must tell apart:
//   close-notify  sends "bye\n", then close_notify, and waits for the client's (unwrap)
//   ragged        sends "bye\n", then closes the socket without close_notify
//   half-close    reads to the client's close_notify, answers "got <data>", closes cleanly
//   banner        speaks first, right behind its handshake (so its data may arrive in the
//                 same read as the handshake's last flight), then answers one line
// It exits 0 only if its side went as planned (the test checks its status). Python sets
// OP_IGNORE_UNEXPECTED_EOF by default, which would take a bare FIN for a close_notify:
// cleared, so a missing close_notify from weft fails the script.
constexpr const char* kPythonServer = R"PY(
import socket, ssl, sys
certfile, keyfile, mode, version = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
ctx.load_cert_chain(certfile, keyfile)
ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
listener = socket.create_server(("127.0.0.1", 0))
print("port", listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
conn.settimeout(10)
s = ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
print("version", s.version(), flush=True)
if mode == "close-notify":
    s.sendall(b"bye\n")
    s.unwrap().close()  # raises unless the client answers with its own close_notify
elif mode == "ragged":
    s.sendall(b"bye\n")
    s.close()
elif mode == "half-close":
    data = b""
    while True:
        piece = s.recv(65536)  # b"" at the client's close_notify; SSLEOFError without one
        if not piece:
            break
        data += piece
    s.sendall(b"got " + data)
    s.unwrap().close()
elif mode == "banner":
    s.sendall(b"banner\n")
    line = s.recv(65536)
    s.sendall(b"got " + line)
    s.unwrap().close()
print("done", flush=True)
)PY";

class PythonTlsServer {
  public:
    PythonTlsServer(const std::string& mode, const TlsCase& tls)
        : p_(weft::create_subprocess_exec(
              {kPython, "-u", "-c", kPythonServer, TestCerts::get().cert("server"),
               TestCerts::get().key("server"), mode, tls.python},
              {.pipe_stdin = false, .pipe_stdout = true, .pipe_stderr = true})) {
        std::string line = weft::timeout(10s, [&] { return p_.stdout_pipe()->read_line(); });
        if (line.rfind("port ", 0) != 0) throw std::runtime_error("python server said: " + line);
        port_ = uint16_t(std::stoi(line.substr(5)));
    }
    ~PythonTlsServer() {
        p_.kill();
        p_.wait();
    }
    uint16_t port() const { return port_; }
    // Waits (10 s at most) for the script to end; its exit status, and what it printed.
    int finish(std::string& out) {
        auto [o, e] = p_.communicate({}, 10s);
        out = o + e;
        return p_.returncode().value_or(-1);
    }

  private:
    weft::Process p_;
    uint16_t port_ = 0;
};

// A Python ssl client: connects to 127.0.0.1:port as "localhost", sends a line, reads to
// the end and prints the version and what came. A server that closes without close_notify
// makes it fail with SSLEOFError: suppress_ragged_eofs=False, and OP_IGNORE_UNEXPECTED_EOF
// (set by default since Python 3.10) cleared.
constexpr const char* kPythonClient = R"PY(
import socket, ssl, sys
cafile, port, version = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
        s.sendall(b"ping from python\n")
        data = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
        print(s.version(), data.decode(), end="")
)PY";

// A weft TLS server whose handler answers one line with "<prefix><line without \n>
// <version>\n" and closes (close() sends close_notify first). `served` counts the
// handlers that ran: a connection whose handshake fails never reaches one.
std::unique_ptr<weft::Server> line_server(const ssl::Context& ctx, int& served,
                                          const std::string& prefix = "echo ") {
    return weft::start_server(
        [&served, prefix](weft::Stream& s) {
            ++served;
            std::string line = s.read_line();
            if (!line.empty() && line.back() == '\n') line.pop_back();
            s.write(prefix + line + " " + s.tls_version() + "\n");
            s.close();
        },
        "127.0.0.1", 0, {.ssl = ctx});
}

class TlsOpenSslServer : public testing::TestWithParam<TlsCase> {};
class TlsOpenSslClient : public testing::TestWithParam<TlsCase> {};
class TlsCurl : public testing::TestWithParam<TlsCase> {};
class TlsPython : public testing::TestWithParam<TlsCase> {};

}  // namespace

// weft's client, verifying against the test CA, talks to s_server -rev (which answers each
// line reversed and, at "CLOSE", sends close_notify and closes): the version asked for is
// the one agreed on both sides, ALPN is agreed, and close_notify reads as a clean EOF.
TEST_P(TlsOpenSslServer, WeftClientEchoesAndSeesCleanClose) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        OpenSslServer server({tls.openssl_flag, "-rev", "-alpn", "http/1.1"});
        auto ctx = client_context();
        ctx.set_alpn_protocols({"h2", "http/1.1"});
        // "localhost": the name sent as SNI and checked against the certificate.
        weft::Stream s = weft::open_connection("localhost", server.port(), tls_to(ctx));
        EXPECT_TRUE(s.is_tls());
        EXPECT_EQ(s.tls_version(), tls.name);
        EXPECT_FALSE(s.tls_cipher().empty());
        EXPECT_EQ(s.selected_alpn_protocol(), "http/1.1");
        EXPECT_TRUE(contains(server.wait_for_log("Protocol version"), tls.name));

        s.write("hello world\n");
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "dlrow olleh\n");
        // Several records' worth in one write, answered line by line.
        std::string many, expected;
        for (int i = 0; i < 200; ++i) {
            std::string line = "line " + std::to_string(i) + std::string(100, 'x');
            many += line + "\n";
            expected += std::string(line.rbegin(), line.rend()) + "\n";
        }
        s.write(many);
        s.drain();
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_exactly(expected.size()); }), expected);

        s.write("CLOSE\n");
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_all(); }),
                  "");  // no SslError: close_notify came
        EXPECT_TRUE(s.at_eof());
        s.close();
    });
}

// A client pinned to TLS 1.2 against an s_server that speaks only 1.3 (and the other way
// round): the handshake fails with an SslError naming OpenSSL's reason.
TEST_P(TlsOpenSslServer, VersionMismatchIsSslError) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        OpenSslServer server({tls.openssl_flag, "-rev"});
        auto ctx = client_context();
        auto other =
            tls.version == ssl::Version::tls1_2 ? ssl::Version::tls1_3 : ssl::Version::tls1_2;
        ctx.set_minimum_version(other);
        ctx.set_maximum_version(other);
        try {
            weft::open_connection("localhost", server.port(), tls_to(ctx));
            ADD_FAILURE() << "a " << tls.name << "-only server accepted another version";
        } catch (const ssl::CertificateError& e) {
            ADD_FAILURE() << "a version mismatch is not a certificate problem: " << e.what();
        } catch (const ssl::SslError& e) {
            EXPECT_FALSE(e.reason().empty()) << e.what();
            EXPECT_TRUE(contains(e.what(), e.reason())) << e.what();
        }
        // s_server goes on serving a client that speaks its version.
        weft::Stream s =
            weft::open_connection("localhost", server.port(), tls_to(client_context()));
        s.write("ok\n");
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "ko\n");
        s.close();
    });
}

// s_server -Verify 1 requires a client certificate: weft's client presents client.pem and
// is served; without one it is refused — during the handshake in TLS 1.2, and in TLS 1.3
// (where the client's handshake ends before the server has checked) at the latest on the
// first read, as an SslError either way.
TEST_P(TlsOpenSslServer, ClientCertificate) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    const auto& certs = TestCerts::get();
    weft::run([&] {
        OpenSslServer server({tls.openssl_flag, "-rev", "-Verify", "1", "-CAfile", certs.ca()});
        auto with_cert = client_context();
        with_cert.load_cert_chain(certs.cert("client"), certs.key("client"));
        {
            weft::Stream s = weft::open_connection("localhost", server.port(), tls_to(with_cert));
            s.write("with a certificate\n");
            EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "etacifitrec a htiw\n");
            s.close();
        }
        try {
            // Nothing written: s_server would close with it unread, and the reset could
            // overtake its alert.
            weft::Stream s =
                weft::open_connection("localhost", server.port(), tls_to(client_context()));
            std::string got = weft::timeout(10s, [&] { return s.read_line(); });
            ADD_FAILURE() << "served without a client certificate: '" << got << "'";
        } catch (const ssl::SslError& e) {
            EXPECT_FALSE(e.reason().empty()) << e.what();
        }
    });
}

// s_server writes clear text into the TLS stream (its "P" command): the read that meets
// it raises SslError naming the peer and OpenSSL's reason, and so does every read and
// write after it.
TEST_P(TlsOpenSslServer, ClearTextMidStreamIsSslError) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        OpenSslServer server({tls.openssl_flag});
        weft::Stream s =
            weft::open_connection("localhost", server.port(), tls_to(client_context()));
        server.wait_for_output("CIPHER is");  // its handshake is over: it reads commands now
        server.input("first");
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "first\n");
        server.input("P");
        try {
            std::string got = weft::timeout(10s, [&] { return s.read_all(); });
            ADD_FAILURE() << "clear text inside TLS read as '" << got << "'";
        } catch (const ssl::SslError& e) {
            EXPECT_EQ(e.reason(), "wrong version number") << e.what();
            EXPECT_TRUE(contains(e.what(), "127.0.0.1:" + std::to_string(server.port())))
                << e.what();
        }
        // The connection is broken for good, and says so: a later write or read raises
        // SslError with the same reason, naming the peer (not "TLS write: unknown error"
        // or "failed: error 5", which is what they said when this test was written).
        const std::string peer = "127.0.0.1:" + std::to_string(server.port());
        try {
            s.write("more\n");
            s.drain();
            ADD_FAILURE() << "a write on a broken TLS connection succeeded";
        } catch (const ssl::SslError& e) {
            EXPECT_EQ(e.reason(), "wrong version number") << e.what();
            EXPECT_TRUE(contains(e.what(), peer)) << e.what();
        }
        try {
            std::string got = s.read();
            ADD_FAILURE() << "a read on a broken TLS connection returned '" << got << "'";
        } catch (const ssl::SslError& e) {
            EXPECT_EQ(e.reason(), "wrong version number") << e.what();
            EXPECT_TRUE(contains(e.what(), peer)) << e.what();
        }
        s.close();
    });
}

// Both directions at once under backpressure: a writer fiber sends 2 MB of lines (drain
// holding it back) while a reader fiber takes s_server's answers, which s_server writes
// with blocking sends: neither side can get ahead of the other by more than the buffers,
// so this only finishes if weft reads and writes one TLS stream concurrently.
TEST_P(TlsOpenSslServer, FullDuplexUnderBackpressure) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        OpenSslServer server({tls.openssl_flag, "-rev"});
        weft::Stream s =
            weft::open_connection("localhost", server.port(), tls_to(client_context()));
        std::string sent, expected;
        for (int i = 0; i < 2000; ++i) {
            std::string line = std::to_string(i) + ":" + std::string(1000, char('a' + i % 26));
            sent += line + "\n";
            expected += std::string(line.rbegin(), line.rend()) + "\n";
        }
        auto writer = weft::spawn([&] {
            for (size_t off = 0; off < sent.size(); off += 4096) {
                s.write(std::string_view(sent).substr(off, 4096));
                s.drain();
            }
        });
        std::string got = weft::timeout(20s, [&] { return s.read_exactly(expected.size()); });
        EXPECT_TRUE(got == expected) << "the answers differ (" << got.size() << " bytes)";
        weft::wait_for(writer, 10s);
        s.close();
    });
}

INSTANTIATE_TEST_SUITE_P(Peer, TlsOpenSslServer, testing::Values(kTls12, kTls13), case_name);

// SNI against an s_server that answers the name other.example with wronghost.pem (its
// -cert2, valid for other.example only) and any other name with a fatal alert
// (-servername_fatal); no SNI gets server.pem. So: server_hostname is what is sent (and
// verified), the host connected to is the default, and an IP address is never sent.
TEST(TlsOpenSslServerSni, TheHostNameIsSentNeverAnAddress) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const auto& certs = TestCerts::get();
    weft::run([&] {
        OpenSslServer server({"-rev", "-servername", "other.example", "-cert2",
                              certs.cert("wronghost"), "-key2", certs.key("wronghost"),
                              "-servername_fatal"});
        auto round_trip = [&](const std::string& host, const std::string& server_hostname) {
            weft::Stream s = weft::open_connection(
                host, server.port(),
                {.timeout = 10s, .ssl = client_context(), .server_hostname = server_hostname});
            s.write("sni\n");
            std::string got = weft::timeout(10s, [&] { return s.read_line(); });
            s.close();
            return got;
        };
        EXPECT_EQ(round_trip("127.0.0.1", "other.example"), "ins\n");  // wronghost.pem, verified
        EXPECT_EQ(round_trip("127.0.0.1", ""), "ins\n");  // no SNI: server.pem's IP entry
        try {
            round_trip("localhost", "");
            ADD_FAILURE() << "SNI 'localhost' was not sent (or not refused)";
        } catch (const ssl::SslError& e) {
            EXPECT_TRUE(contains(e.reason(), "unrecognized name")) << e.what();
        }
    });
}

// TLS 1.3 key updates: s_server updates its keys and asks for ours ("K"); weft's client
// reads on under the new keys, and its next write carries a KeyUpdate of its own first
// (OpenSSL answers on the next write, as RFC 8446 4.6.3 allows; s_server's -msg trace
// shows it arriving), then data that s_server reads under the new keys.
TEST(TlsOpenSslServer13, KeyUpdateBothWays) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    TestCerts::get();
    weft::run([&] {
        OpenSslServer server({"-tls1_3", "-msg"});
        weft::Stream s =
            weft::open_connection("localhost", server.port(), tls_to(client_context()));
        server.wait_for_output("CIPHER is");
        server.input("K");
        server.wait_for_output(">>> TLS 1.3, Handshake [length 0005], KeyUpdate");
        server.input("under new keys");
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "under new keys\n");
        s.write("client after the update\n");
        server.wait_for_output("<<< TLS 1.3, Handshake [length 0005], KeyUpdate");
        server.wait_for_output("client after the update");
        s.close();
    });
}

// s_client verifies weft's server (chain and host name, -verify_return_error: any failure
// aborts) and gets its line answered; the handler saw the version s_client was pinned to.
// -quiet implies -ign_eof: s_client reads until weft's server closes, and exits 1 ("unexpected
// eof while reading") unless that close came with close_notify.
TEST_P(TlsOpenSslClient, AgainstWeftServer) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    const auto& certs = TestCerts::get();
    weft::run([&] {
        int served = 0;
        auto server = line_server(server_context(), served);
        Tool t = run_tool(
            {kOpenSsl, "s_client", "-connect", "127.0.0.1:" + std::to_string(server->port()),
             "-servername", "localhost", "-verify_hostname", "localhost", "-CAfile", certs.ca(),
             "-verify_return_error", "-quiet", tls.openssl_flag},
            "hello\n");
        EXPECT_EQ(t.status, 0) << t.err;
        EXPECT_EQ(t.out, std::string("echo hello ") + tls.name + "\n") << t.err;
        EXPECT_EQ(served, 1);
        server->close();
        server->wait_closed();
    });
}

// A weft server that requires client certificates (Verify::required, the test CA):
// s_client with client.pem is served; s_client without a certificate is refused before
// the handler runs; and the server goes on serving the next good client.
TEST_P(TlsOpenSslClient, ClientCertificateRequiredByWeftServer) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const TlsCase& tls = GetParam();
    const auto& certs = TestCerts::get();
    weft::run([&] {
        auto ctx = server_context();
        ctx.set_verify_mode(ssl::Verify::required);
        ctx.load_verify_locations(certs.ca());
        int served = 0;
        auto server = line_server(ctx, served);
        auto s_client = [&](std::vector<std::string> extra) {
            std::vector<std::string> argv = {kOpenSsl,
                                             "s_client",
                                             "-connect",
                                             "127.0.0.1:" + std::to_string(server->port()),
                                             "-servername",
                                             "localhost",
                                             "-CAfile",
                                             certs.ca(),
                                             "-verify_return_error",
                                             "-quiet",
                                             tls.openssl_flag};
            argv.insert(argv.end(), extra.begin(), extra.end());
            return run_tool(argv, "hello\n");
        };
        Tool good = s_client({"-cert", certs.cert("client"), "-key", certs.key("client")});
        EXPECT_EQ(good.out, std::string("echo hello ") + tls.name + "\n") << good.err;
        EXPECT_EQ(served, 1);

        Tool refused = s_client({});
        EXPECT_FALSE(contains(refused.out, "echo")) << refused.out;
        EXPECT_NE(refused.status, 0) << refused.err;
        EXPECT_EQ(served, 1);  // the handler never ran for it

        Tool again = s_client({"-cert", certs.cert("client"), "-key", certs.key("client")});
        EXPECT_EQ(again.out, std::string("echo hello ") + tls.name + "\n") << again.err;
        EXPECT_EQ(served, 2);
        server->close();
        server->wait_closed();
    });
}

INSTANTIATE_TEST_SUITE_P(Peer, TlsOpenSslClient, testing::Values(kTls12, kTls13), case_name);

// A TLS 1.2 client that asks to renegotiate (s_client's "R" command) is refused: weft
// contexts set SSL_OP_NO_RENEGOTIATION (renegotiation is a known way to burn a server's CPU
// and has had its own attacks). The client gives up on the connection, the handler sees an
// SslError, and the server serves the next client.
TEST(TlsOpenSslClient12, RenegotiationIsRefused) {
    REQUIRE_PEER(kOpenSsl, "openssl");
    const auto& certs = TestCerts::get();
    weft::run([&] {
        std::vector<std::string> errors;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                try {
                    for (std::string line; !(line = s.read_line()).empty() && line != "bye\n";)
                        s.write("echo " + line);
                } catch (const ssl::SslError& e) {
                    errors.push_back(e.what());
                }
            },
            "127.0.0.1", 0, {.ssl = server_context()});
        std::vector<std::string> argv = {kOpenSsl,
                                         "s_client",
                                         "-connect",
                                         "127.0.0.1:" + std::to_string(server->port()),
                                         "-servername",
                                         "localhost",
                                         "-CAfile",
                                         certs.ca(),
                                         "-verify_return_error",
                                         "-tls1_2"};
        {
            // Not -quiet: s_client takes commands only then, and only at the start of what
            // one read of its stdin brings: "R" goes once "first" has been answered.
            auto p = weft::create_subprocess_exec(
                argv, {.pipe_stdin = true, .pipe_stdout = true, .pipe_stderr = true});
            p.stdin_pipe()->write("first\n");
            weft::timeout(10s, [&] {
                for (std::string line; (line = p.stdout_pipe()->read_line()) != "echo first\n";)
                    if (line.empty()) throw std::runtime_error("s_client ended before the echo");
            });
            p.stdin_pipe()->write("R\n");
            p.stdin_pipe()->drain();
            auto [out, err] = p.communicate({}, 10s);
            EXPECT_TRUE(contains(err, "RENEGOTIATING")) << err;
            EXPECT_FALSE(contains(out, "echo R")) << out;
        }
        EXPECT_TRUE(weft::testing::wait_until([&] { return !errors.empty(); }, 5s));
        // s_client answers the refusal with a fatal handshake_failure alert.
        for (const auto& e : errors)
            EXPECT_TRUE(contains(e, "127.0.0.1:") && contains(e, "alert handshake failure")) << e;
        argv.push_back("-quiet");
        Tool again = run_tool(argv, "second\nbye\n");
        EXPECT_EQ(again.out, "echo second\n") << again.err;
    });
}

// curl, verifying against the test CA, fetches from a weft TLS server whose handler speaks
// just enough HTTP/1.1; the server's ALPN list (http/1.1 only) is what it agrees with curl
// (which offers h2 first).
TEST_P(TlsCurl, AgainstWeftServer) {
    REQUIRE_PEER(kCurl, "curl");
    const TlsCase& tls = GetParam();
    const auto& certs = TestCerts::get();
    weft::run([&] {
        auto ctx = server_context();
        ctx.set_alpn_protocols({"http/1.1"});
        int served = 0;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                ++served;
                std::string head = s.read_until("\r\n\r\n");
                EXPECT_EQ(head.rfind("GET /hello HTTP/1.1\r\n", 0), 0u) << head;
                std::string body =
                    "hello over " + s.tls_version() + " alpn " + s.selected_alpn_protocol() + "\n";
                s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
                s.close();
            },
            "127.0.0.1", 0, {.ssl = ctx});
        std::string port = std::to_string(server->port());
        // --resolve: "localhost" is the name curl checks, 127.0.0.1 (not ::1) where it goes.
        std::vector<std::string> argv = {
            kCurl, "-sS", "--cacert", certs.ca(), "--resolve", "localhost:" + port + ":127.0.0.1"};
        argv.insert(argv.end(), tls.curl_flags.begin(), tls.curl_flags.end());
        argv.push_back("https://localhost:" + port + "/hello");
        Tool t = run_tool(argv);
        EXPECT_EQ(t.status, 0) << t.err;
        EXPECT_EQ(t.out, std::string("hello over ") + tls.name + " alpn http/1.1\n") << t.err;
        EXPECT_EQ(served, 1);
        server->close();
        server->wait_closed();
    });
}

INSTANTIATE_TEST_SUITE_P(Peer, TlsCurl, testing::Values(kTls12, kTls13), case_name);

// Python's ssl module (create_default_context with the test CA) against weft's server. It
// reads with suppress_ragged_eofs=False, so its clean exit also proves that close() sent
// close_notify before closing the connection.
TEST_P(TlsPython, ClientAgainstWeftServer) {
    REQUIRE_PEER(kPython, "python3");
    const TlsCase& tls = GetParam();
    const auto& certs = TestCerts::get();
    weft::run([&] {
        int served = 0;
        auto server = line_server(server_context(), served, "pong ");
        Tool t = run_tool(
            {kPython, "-c", kPythonClient, certs.ca(), std::to_string(server->port()), tls.python});
        EXPECT_EQ(t.status, 0) << t.err;
        EXPECT_EQ(t.out, std::string(tls.name) + " pong ping from python " + tls.name + "\n")
            << t.err;
        EXPECT_EQ(served, 1);
        server->close();
        server->wait_closed();
    });
}

// A Python server that ends with close_notify and waits for ours: weft reads the data,
// then a clean EOF, and close() answers with close_notify (else unwrap() fails there).
TEST_P(TlsPython, WeftClientCloseNotifyBothWays) {
    REQUIRE_PEER(kPython, "python3");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        PythonTlsServer py("close-notify", tls);
        weft::Stream s = weft::open_connection("localhost", py.port(), tls_to(client_context()));
        EXPECT_EQ(s.tls_version(), tls.name);
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_all(); }), "bye\n");
        s.close();
        s.wait_closed();
        std::string out;
        EXPECT_EQ(py.finish(out), 0) << out;
        EXPECT_TRUE(contains(out, "done")) << out;
    });
}

// A Python server that closes the socket without close_notify after its data: weft hands
// over the data first, then the read that meets the bare EOF raises SslError "unexpected
// eof while reading" (a truncation attack looks exactly like this), and so do the reads
// after it.
TEST_P(TlsPython, WeftClientRaggedEofIsSslError) {
    REQUIRE_PEER(kPython, "python3");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        PythonTlsServer py("ragged", tls);
        weft::Stream s = weft::open_connection("localhost", py.port(), tls_to(client_context()));
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "bye\n");
        try {
            std::string more = weft::timeout(10s, [&] { return s.read(); });
            ADD_FAILURE() << "a bare EOF read as '" << more << "' instead of an SslError";
        } catch (const ssl::SslError& e) {
            EXPECT_TRUE(contains(e.reason(), "unexpected eof while reading")) << e.what();
            EXPECT_TRUE(contains(e.what(), "127.0.0.1:" + std::to_string(py.port()))) << e.what();
        }
        // A second read must not pass the truncation off as a clean end: code that reads on
        // after the error (a read_line that raised, then read_all) would take a cut-short
        // stream for a whole one. It returned "" (at_eof() true) when this was written.
        try {
            std::string more = weft::timeout(10s, [&] { return s.read_all(); });
            ADD_FAILURE() << "after the SslError, a bare EOF read as a clean end: '" << more << "'";
        } catch (const ssl::SslError& e) {
            EXPECT_TRUE(contains(e.reason(), "unexpected eof while reading")) << e.what();
        }
        s.close();
        std::string out;
        EXPECT_EQ(py.finish(out), 0) << out;
    });
}

// write_eof over TLS: close_notify, then the write side shut; reading goes on. The Python
// server reads to our close_notify (SSLEOFError if it were a bare FIN) and only then
// answers, which weft still receives. The header promises this for TLS 1.3; OpenSSL (so
// Python) peers allow it over 1.2 too.
TEST_P(TlsPython, WeftClientWriteEofThenReads) {
    REQUIRE_PEER(kPython, "python3");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        PythonTlsServer py("half-close", tls);
        weft::Stream s = weft::open_connection("localhost", py.port(), tls_to(client_context()));
        s.write("ping");
        s.write_eof();
        EXPECT_TRUE(s.is_closing());
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_all(); }), "got ping");
        s.close();
        std::string out;
        EXPECT_EQ(py.finish(out), 0) << out;
    });
}

// A server that speaks first, right behind its handshake: its data, possibly received in
// the same read as the handshake's end, is kept for the first read.
TEST_P(TlsPython, WeftClientServerSpeaksFirst) {
    REQUIRE_PEER(kPython, "python3");
    const TlsCase& tls = GetParam();
    TestCerts::get();
    weft::run([&] {
        PythonTlsServer py("banner", tls);
        weft::Stream s = weft::open_connection("localhost", py.port(), tls_to(client_context()));
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_line(); }), "banner\n");
        s.write("hi\n");
        EXPECT_EQ(weft::timeout(10s, [&] { return s.read_all(); }), "got hi\n");
        s.close();
        std::string out;
        EXPECT_EQ(py.finish(out), 0) << out;
    });
}

INSTANTIATE_TEST_SUITE_P(Peer, TlsPython, testing::Values(kTls12, kTls13), case_name);
