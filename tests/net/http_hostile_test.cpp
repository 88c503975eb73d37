// Hostile and careless HTTP peers (issue 20, item 2): clients that stall a head or a
// body, refuse to read, send impossible chunk sizes, omit Host, speak another version or
// ask to switch protocols; handlers returning statuses that are not final; and, on the
// client side, header names that are not tokens, non-ASCII paths and servers that answer
// 100 Continue forever. The server's time limits are set short through its options, so
// every case is over in well under a second; the bounds of 10 s only turn a connection
// held open into a failure.
#include <weft/weft.hpp>

#include <sys/resource.h>
#include <fcntl.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;

namespace {

// Routes for the stalling clients: /echo reads its body, /ignore does not, /patient reads
// it and answers the TimeoutError itself, /status/N answers status N.
http::Application hostile_app() {
    http::Application app;
    app.add_get("/hello", [](http::Request&) { return http::Response::text("hello"); });
    app.add_post("/echo", [](http::Request& r) { return http::Response::text(r.read()); });
    app.add_post("/ignore", [](http::Request&) { return http::Response::text("ignored"); });
    app.add_post("/patient", [](http::Request& r) {
        try {
            return http::Response::text(r.read());
        } catch (const weft::TimeoutError& e) {
            return http::Response::text(std::string("gave up: ") + e.what());
        }
    });
    app.add_get("/status/*", [](http::Request& r) {
        http::Response out;
        out.status = std::stoi(r.path().substr(8));
        return out;
    });
    return app;
}

// Short limits, and long ones for what a case does not exercise.
http::HttpServerOptions short_limits() {
    http::HttpServerOptions o;
    o.header_timeout = 300ms;
    o.body_timeout = 300ms;
    o.keepalive_timeout = 30s;
    o.io_timeout = 30s;
    return o;
}

weft::Stream connect_to(const http::HttpServer& server) {
    return weft::open_connection("127.0.0.1", server.port());
}

// Everything the server sends until it closes the connection (a reset counts as a close).
std::string until_closed(weft::Stream& s) {
    return weft::wait_for(weft::spawn([&] {
                              std::string all;
                              try {
                                  for (std::string piece; !(piece = s.read()).empty();) all += piece;
                              } catch (const weft::SystemError&) {
                              }
                              return all;
                          }),
                          10s);
}

// What `request` alone on a fresh connection is answered with, up to the close.
std::string answer_to(const http::HttpServer& server, const std::string& request) {
    auto s = connect_to(server);
    s.write(request);
    return until_closed(s);
}

// Reads one response with a Content-Length body off a raw stream.
std::pair<std::string, std::string> raw_response(weft::Stream& s) {
    std::string head = s.read_until("\r\n\r\n");
    size_t at = head.find("Content-Length: ");
    size_t length = at == head.npos ? 0 : std::stoul(head.substr(at + 16));
    return {head, s.read_exactly(length)};
}

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != haystack.npos; }

weft::Duration since(weft::TimePoint t) { return weft::Clock::now() - t; }

// Restores the process's descriptor limit however the test leaves.
struct FdLimit {
    rlimit saved{};
    explicit FdLimit(rlim_t soft) {
        ::getrlimit(RLIMIT_NOFILE, &saved);
        rlimit low = saved;
        low.rlim_cur = soft;
        EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    }
    ~FdLimit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

int lowest_free_fd() {
    int fd = 0;
    while (::fcntl(fd, F_GETFD) >= 0) ++fd;
    return fd;
}

}  // namespace

// README's HTTP section states the defaults; this holds them to it, and to the issue's
// promise that a stalled client is freed within 60 s.
TEST(HttpHostile, DefaultTimeoutsAreWhatReadmeSays) {
    std::ifstream file(WEFT_README);
    ASSERT_TRUE(file) << "cannot read " << WEFT_README;
    std::string readme{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    http::HttpServerOptions o;
    auto check = [&](const std::string& name, weft::Duration d) {
        EXPECT_LE(d, 60s) << name;
        auto whole = std::chrono::duration_cast<std::chrono::seconds>(d);
        EXPECT_EQ(d, whole) << name;
        std::string row = "| `" + name + "` | " + std::to_string(whole.count()) + " s |";
        EXPECT_TRUE(contains(readme, row)) << "README has no row " << row;
    };
    check("header_timeout", o.header_timeout);
    check("keepalive_timeout", o.keepalive_timeout);
    check("body_timeout", o.body_timeout);
    check("io_timeout", o.io_timeout);
}

// A head must be whole within header_timeout of its first byte however steadily it
// trickles in (before, only the keep-alive timeout cut it); a new connection's first head
// is due that long after the accept. Time between requests is not head time.
TEST(HttpHostile, HeadSentByteByByteIsCutByHeaderTimeout) {
    weft::run([] {
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0, short_limits());
        {
            auto silent = connect_to(*server);
            auto start = weft::Clock::now();
            EXPECT_EQ(until_closed(silent), "");
            EXPECT_GE(since(start), 250ms);
        }
        const std::string head = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(80, 'a') + "\r\n\r\n";
        for (bool kept_alive : {false, true}) {
            auto s = connect_to(*server);
            if (kept_alive) {
                s.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
                EXPECT_EQ(raw_response(s).second, "hello");
                weft::sleep(400ms);  // idle longer than header_timeout: that is allowed
            }
            bool stop = false;
            auto trickle = weft::spawn([&] {  // a byte every 10 ms: a second for the head
                try {
                    for (size_t i = 0; i < head.size() && !stop; ++i) {
                        s.write(head.substr(i, 1));
                        s.drain();
                        weft::sleep(10ms);
                    }
                } catch (const weft::SystemError&) {  // the server hung up
                }
            });
            auto start = weft::Clock::now();
            EXPECT_EQ(until_closed(s), "") << "kept alive: " << kept_alive;  // closed, unanswered
            EXPECT_GE(since(start), 250ms);
            stop = true;
            trickle.get();
        }
        server->shutdown();
    });
}

// A body that stops coming is given up after body_timeout between pieces, whoever reads
// it: a handler (408, or its own answer to the TimeoutError), or the server draining
// what the handler left. A slow but steady body is let be.
TEST(HttpHostile, StalledBodiesAreCutByBodyTimeout) {
    weft::run([] {
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0, short_limits());
        auto start = weft::Clock::now();
        // All at once: each waits out the same body_timeout.
        auto [stopped, no_body, chunk_cut, answered, unread] = weft::gather(
            [&] { return answer_to(*server, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"); },
            // Expect: 100-continue, and then no body.
            [&] {
                return answer_to(*server, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                                          "Expect: 100-continue\r\n\r\n");
            },
            [&] {  // a chunked body stalled inside a chunk
                return answer_to(*server, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
            },
            // The handler answers the TimeoutError itself.
            [&] { return answer_to(*server, "POST /patient HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"); },
            // Left unread, and stalled: the drain is cut by body_timeout, long before io_timeout.
            [&] { return answer_to(*server, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"); });
        EXPECT_GE(since(start), 250ms);
        EXPECT_TRUE(stopped.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << stopped;
        EXPECT_TRUE(contains(stopped, "Connection: close")) << stopped;
        EXPECT_TRUE(contains(stopped, "body_timeout")) << stopped;
        EXPECT_TRUE(no_body.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 408 ")) << no_body;
        EXPECT_TRUE(chunk_cut.starts_with("HTTP/1.1 408 ")) << chunk_cut;
        // The handler saw a TimeoutError saying what happened; the connection still
        // closes, since the rest of the body is not coming.
        EXPECT_TRUE(answered.starts_with("HTTP/1.1 200 OK\r\n")) << answered;
        EXPECT_TRUE(contains(answered, "Connection: close")) << answered;
        EXPECT_TRUE(contains(answered, "gave up: HTTP request body from 127.0.0.1")) << answered;
        EXPECT_EQ(unread, "");

        // Slow but steady: each piece within body_timeout, the whole body well beyond it.
        auto s = connect_to(*server);
        s.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
        for (int i = 0; i < 5; ++i) {
            weft::sleep(150ms);
            s.write("ab");
        }
        auto [head, body] = raw_response(s);
        EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK\r\n")) << head;
        EXPECT_EQ(body, "ababababab");
        server->shutdown();
    });
}

// A chunk size is compared with the body limit as soon as it is read: 413 at once, not
// after the client has sent that much (for ffffffffffffffff: never).
TEST(HttpHostile, ImpossibleChunkSizeIs413AtOnce) {
    weft::run([] {
        http::HttpServerOptions o;
        o.max_body_size = 1024 * 1024;
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0, o);
        const std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        std::string got = answer_to(*server, chunked + "ffffffffffffffff\r\nab");
        EXPECT_TRUE(got.starts_with("HTTP/1.1 413 ")) << got;
        EXPECT_TRUE(contains(got, "chunk of 18446744073709551615 bytes")) << got;
        got = answer_to(*server, chunked + "100001\r\n");  // one byte over 1 MiB
        EXPECT_TRUE(got.starts_with("HTTP/1.1 413 ")) << got;
        // Each chunk fits; the second does not fit beside the first.
        got = answer_to(*server, chunked + "80000\r\n" + std::string(0x80000, 'x') + "\r\n80001\r\n");
        EXPECT_TRUE(got.starts_with("HTTP/1.1 413 ")) << got;
        server->shutdown();
    });
}

// Every way of stalling above at once, with the process out of descriptors: the server
// cannot accept a newcomer until its limits free a stalled connection's descriptor, and
// then it answers it. (Before, none was ever freed: 60 of them locked out a server run
// with `ulimit -n 64`.)
TEST(HttpHostile, StalledClientsDoNotLockTheServerOut) {
    weft::run([] {
        std::vector<std::string> reports;
        weft::Loop::current().set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { reports.push_back(c.message); });
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0, short_limits());
        const std::vector<std::string> stalls = {
            "",                                       // connects, says nothing
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-Sl",  // half a head
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
            "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        };
        std::vector<weft::Stream> stalled;
        for (int round = 0; round < 2; ++round)
            for (const auto& bytes : stalls) {
                stalled.push_back(connect_to(*server));
                if (!bytes.empty()) stalled.back().write(bytes);
            }
        ASSERT_TRUE(weft::testing::wait_until([&] { return server->connections_accepted() == stalled.size(); }));
        std::string answer;
        {
            // The newcomer's socket takes the last descriptor the process may open.
            FdLimit limit(rlim_t(lowest_free_fd() + 1));
            auto newcomer = weft::open_connection(weft::SocketAddress::ip("127.0.0.1", server->port()));
            newcomer.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            answer = until_closed(newcomer);
        }
        EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 OK\r\n")) << answer;
        EXPECT_TRUE(answer.ends_with("\r\n\r\nhello")) << answer;
        for (const auto& r : reports) EXPECT_TRUE(contains(r, "Too many open files")) << r;
        for (auto& s : stalled) EXPECT_NO_THROW(until_closed(s));  // every one was let go
        server->shutdown();
    });
}

// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host, any request at most one.
TEST(HttpHostile, RequestWithoutExactlyOneHostIs400) {
    weft::run([] {
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0);
        for (std::string bad : {"GET /hello HTTP/1.1\r\n\r\n", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                                "GET /hello HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"}) {
            std::string got = answer_to(*server, bad);
            EXPECT_TRUE(got.starts_with("HTTP/1.1 400 ")) << bad << got;
            EXPECT_TRUE(contains(got, "Host")) << got;
        }
        std::string got = answer_to(*server, "GET /hello HTTP/1.0\r\n\r\n");  // 1.0 needs none
        EXPECT_TRUE(got.starts_with("HTTP/1.1 200 ")) << got;
        server->shutdown();
    });
}

// A major version other than 1 is 505 (llhttp parses 0.9 and 2.0 lines as well); a
// malformed version stays 400.
TEST(HttpHostile, UnknownMajorVersionIs505) {
    weft::run([] {
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0);
        for (std::string version : {"2.0", "3.1", "9.9", "0.9"}) {
            std::string got = answer_to(*server, "GET /hello HTTP/" + version + "\r\nHost: x\r\n\r\n");
            EXPECT_TRUE(got.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n")) << version << got;
            EXPECT_TRUE(contains(got, "HTTP/" + version + " is not supported")) << got;
        }
        std::string got = answer_to(*server, "GET /hello HTTP/1.x\r\nHost: x\r\n\r\n");
        EXPECT_TRUE(got.starts_with("HTTP/1.1 400 ")) << got;
        server->shutdown();
    });
}

// weft serves no other protocol, so an Upgrade request is answered as plain HTTP and the
// connection goes on: the request pipelined behind it is answered too (it was dropped).
// CONNECT is different: what follows it is a tunnel's bytes, so its connection closes.
TEST(HttpHostile, DeclinedUpgradeGoesOnAsHttp) {
    weft::run([] {
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0);
        auto s = connect_to(*server);
        s.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                "HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 3\r\n\r\nabc"
                "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        auto [head1, body1] = raw_response(s);
        EXPECT_TRUE(head1.starts_with("HTTP/1.1 200 OK\r\n")) << head1;
        EXPECT_FALSE(contains(head1, "Connection: close")) << head1;
        EXPECT_EQ(body1, "hello");
        auto [head2, body2] = raw_response(s);
        EXPECT_FALSE(contains(head2, "Connection: close")) << head2;
        EXPECT_EQ(body2, "abc");
        auto [head3, body3] = raw_response(s);
        EXPECT_EQ(body3, "hello");
        EXPECT_EQ(until_closed(s), "");

        std::string got = answer_to(*server, "CONNECT x:80 HTTP/1.1\r\nHost: x:80\r\n\r\n\x16\x03\x01 tunnel bytes");
        EXPECT_TRUE(contains(got, "Connection: close")) << got;
        EXPECT_EQ(got.find("HTTP/1.1", 1), got.npos) << got;  // one answer: the rest is not a request
        server->shutdown();
    });
}

// A status that is not final (1xx) or not a status at all is the handler's error, reported
// and answered 500; it never reaches the wire.
TEST(HttpHostile, HandlerStatusOutside200To599IsAnError) {
    weft::run([] {
        std::vector<std::string> reports;
        weft::Loop::current().set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { reports.push_back(c.message); });
        auto server = http::start_http_server(hostile_app(), "127.0.0.1", 0);
        http::ClientSession session;
        const std::string base = "http://127.0.0.1:" + std::to_string(server->port()) + "/status/";
        for (int bad : {-1, 0, 99, 100, 101, 103, 199, 600, 1000}) {
            auto r = session.get(base + std::to_string(bad));
            EXPECT_EQ(r.status(), 500) << bad;
            r.read();
        }
        EXPECT_EQ(reports.size(), 9u);
        EXPECT_EQ(session.get(base + "200").status(), 200);
        EXPECT_EQ(session.get(base + "599").status(), 599);
        session.close();
        server->shutdown();
    });
}

// A header name must be a token: "Content-Length " would go out beside the real
// Content-Length, one length to one parser and a stray field to another.
TEST(HttpHostile, HeaderNamesMustBeTokens) {
    for (std::string bad : {"Content-Length ", " X", "X Y", "X:Y", "X\tY", "", "X\"", "X(", "X@", "\xc3\x84"}) {
        http::Headers h;
        EXPECT_THROW(h.add(bad, "1"), http::HttpError) << "'" << bad << "'";
        EXPECT_THROW(h.set(bad, "1"), http::HttpError) << "'" << bad << "'";
    }
    EXPECT_THROW((http::Headers{{"Content-Length ", "5"}}), http::HttpError);
    http::Headers ok;
    EXPECT_NO_THROW(ok.add("X-Custom_1!#$%&'*+.^`|~", "fine"));

    // A handler's response header is held to the same rule: a 500, not an injected field.
    weft::run([] {
        weft::Loop::current().set_exception_handler([](weft::Loop&, const weft::ExceptionContext&) {});
        http::Application app;
        app.add_get("/bad", [](http::Request&) {
            auto r = http::Response::text("x");
            r.headers.add("Content-Length ", "100");
            return r;
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        EXPECT_EQ(session.get("http://127.0.0.1:" + std::to_string(server->port()) + "/bad").status(), 500);
        session.close();
        server->shutdown();
    });
}

// Non-ASCII in a URL's path or query is percent-encoded (as browsers and yarl do), not
// refused; spaces and control characters still are.
TEST(HttpHostile, ClientPercentEncodesNonAsciiInPaths) {
    EXPECT_EQ(http::parse_url("http://h/caf\xc3\xa9/\xe2\x82\xac?q=\xc3\xa9#\xc3\xa9").target,
              "/caf%C3%A9/%E2%82%AC?q=%C3%A9");
    EXPECT_EQ(http::parse_url("http://h?\xc3\xa9").target, "/?%C3%A9");
    EXPECT_EQ(http::parse_url("http://h/already%20encoded").target, "/already%20encoded");
    EXPECT_EQ(http::resolve_url(http::parse_url("http://h/a/b"), "\xc3\xa9").target, "/a/%C3%A9");
    EXPECT_THROW(http::parse_url("http://h/a b"), http::InvalidUrl);
    EXPECT_THROW(http::parse_url("http://h/a\x7f"), http::InvalidUrl);
    EXPECT_THROW(http::parse_url("http://h\xc3\xa9/"), http::InvalidUrl);  // no IDNA for hosts

    weft::run([] {
        http::Application app;
        app.add_get("/*", [](http::Request& r) { return http::Response::text(r.target()); });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        std::string base = "http://127.0.0.1:" + std::to_string(server->port());
        EXPECT_EQ(session.get(base + "/caf\xc3\xa9?x=\xc3\xa9").text(), "/caf%C3%A9?x=%C3%A9");
        session.close();
        server->shutdown();
    });
}

// The client reads at most five interim (1xx) answers to a request, as Go does: a
// server that sends them forever cannot hold it.
TEST(HttpHostile, ClientStopsAfterFiveInterimResponses) {
    weft::run([] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                std::string head = s.read_until("\r\n\r\n");
                std::string path = head.substr(4, head.find(' ', 4) - 4);
                const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
                std::string many;  // "forever" in writes drain() can hold back
                for (int i = 0; i < 1000; ++i) many += interim;
                try {
                    if (path == "/forever")
                        for (;;) {
                            s.write(many);
                            s.drain();
                        }
                    for (int i = 0; i < std::stoi(path.substr(1)); ++i) s.write(interim);
                    s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                    s.drain();
                } catch (const weft::Error&) {  // the client gave up and reset
                }
            },
            "127.0.0.1", 0);
        std::string base = "http://127.0.0.1:" + std::to_string(server->port());
        http::ClientSessionOptions options;
        options.timeout.total = 10s;  // a client reading interim answers forever fails, not hangs
        http::ClientSession session(options);
        EXPECT_EQ(session.get(base + "/5").text(), "ok");
        for (std::string path : {"/6", "/forever"}) {
            try {
                session.get(base + path);
                ADD_FAILURE() << path << ": no error";
            } catch (const http::BadMessage& e) {
                EXPECT_TRUE(contains(e.what(), "more than 5 interim (1xx) responses")) << e.what();
            }
        }
        session.close();
        server->close();
        server->wait_closed();
    });
}
