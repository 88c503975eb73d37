// HTTP client and server against each other on loopback: round trips, keep-alive reuse and
// pool limits, pipelining, chunked bodies both ways, size limits, malformed input on
// either side, timeouts, redirects and graceful shutdown. Raw streams stand in for a
// misbehaving peer where the weft side would never send such bytes.
#include <weft/weft.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/sockios.h>
#endif

#include <optional>
#include <string>

#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;

namespace {

// A raw TCP server that answers any request head with `reply` (as it is when the request
// arrives), then half-closes: for feeding the client responses no real server would send.
std::unique_ptr<weft::Server> canned_reply_server(const std::string& reply) {
    return weft::start_server(
        [&reply](weft::Stream& s) {
            s.read_until("\r\n\r\n");
            s.write(reply);
            s.write_eof();
        },
        "127.0.0.1", 0);
}

std::string url(const http::HttpServer& server, const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

// An application with a few routes most tests use.
http::Application test_app() {
    http::Application app;
    app.add_get("/hello", [](http::Request&) { return http::Response::text("hello"); });
    app.add_post("/echo", [](http::Request& r) {
        auto resp = http::Response::text(r.read());
        resp.headers.add("X-Method", r.method());
        return resp;
    });
    app.add_get("/port", [](http::Request& r) { return http::Response::text(std::to_string(r.peer().port())); });
    app.add_get("/big", [](http::Request&) { return http::Response::text(std::string(1 << 20, 'z')); });
    return app;
}

// True once everything written to `s` has been acknowledged by the peer's kernel: it is in
// the peer's receive queue, whether or not the peer has read it yet.
bool peer_has_everything(weft::Stream& s) {
    int unacked = 0;
#if defined(__linux__)
    int rc = ::ioctl(s.fd(), SIOCOUTQ, &unacked);
#elif defined(FIONWRITE)  // FreeBSD
    int rc = ::ioctl(s.fd(), FIONWRITE, &unacked);
#else  // macOS
    socklen_t len = sizeof unacked;
    int rc = ::getsockopt(s.fd(), SOL_SOCKET, SO_NWRITE, &unacked, &len);
#endif
    return rc == 0 && unacked == 0;
}

// Until the server's listener is closed (a connect is refused): shutdown() has begun.
bool refused(const http::HttpServer& server) {
    try {
        weft::open_connection("127.0.0.1", server.port());
        return false;
    } catch (const weft::SystemError&) {
        return true;
    }
}

// Reads one response off a raw stream: its head, and a body of Content-Length bytes.
std::pair<std::string, std::string> raw_response(weft::Stream& s) {
    std::string head = s.read_until("\r\n\r\n");
    size_t at = head.find("Content-Length: ");
    size_t length = at == head.npos ? 0 : std::stoul(head.substr(at + 16));
    return {head, s.read_exactly(length)};
}

}  // namespace

TEST(Http, GetPostAndRouting) {
    weft::run([] {
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0);
        http::ClientSession session;
        auto r = session.get(url(*server, "/hello"));
        EXPECT_EQ(r.status(), 200);
        EXPECT_EQ(r.reason(), "OK");
        EXPECT_EQ(r.headers().get("content-type").value_or(""), "text/plain; charset=utf-8");
        EXPECT_EQ(r.text(), "hello");

        auto p = session.post(url(*server, "/echo"), "some body");
        EXPECT_EQ(p.status(), 200);
        EXPECT_EQ(p.headers().get("X-Method").value_or(""), "POST");
        EXPECT_EQ(p.text(), "some body");

        auto missing = session.get(url(*server, "/nope"));
        EXPECT_EQ(missing.status(), 404);
        EXPECT_THROW(missing.raise_for_status(), http::ClientResponseError);
        missing.read();

        auto wrong = session.request("DELETE", url(*server, "/hello"));
        EXPECT_EQ(wrong.status(), 405);
        EXPECT_EQ(wrong.headers().get("Allow").value_or(""), "GET");
        wrong.read();

        auto head = session.request("HEAD", url(*server, "/hello"));
        EXPECT_EQ(head.status(), 200);
        EXPECT_EQ(head.headers().get("Content-Length").value_or(""), "5");
        EXPECT_EQ(head.read(), "");
        // Everything went over one kept-alive connection, HEAD's body-less answer included.
        EXPECT_EQ(session.get(url(*server, "/hello")).text(), "hello");
        EXPECT_EQ(server->connections_accepted(), 1u);
        session.close();
        server->shutdown();
    });
}

TEST(Http, InvalidUrlsAreRejected) {
    weft::run([] {
        http::ClientSession session;
        EXPECT_THROW(session.get("ftp://example.com/"), http::InvalidUrl);
        EXPECT_THROW(session.get("https:///path"), http::InvalidUrl);
        EXPECT_THROW(session.get("http:///path"), http::InvalidUrl);
        EXPECT_THROW(session.get("http://host:99999/"), http::InvalidUrl);
        EXPECT_THROW(session.get("example.com"), http::InvalidUrl);
        try {
            session.get("ftp://example.com/");
            ADD_FAILURE() << "ftp:// accepted";
        } catch (const http::InvalidUrl& e) {
            EXPECT_NE(std::string(e.what()).find("only http:// and https://"), std::string::npos) << e.what();
        }
        auto s = http::parse_url("HTTPS://Example.com/x");  // https: port 443, omitted from Host
        EXPECT_EQ(s.scheme, "https");
        EXPECT_EQ(s.port, 443);
        EXPECT_EQ(s.authority(), "Example.com");
        EXPECT_EQ(http::parse_url("https://h:8443/").authority(), "h:8443");
        EXPECT_EQ(http::parse_url("https://h:80/").to_string(), "https://h:80/");
        EXPECT_EQ(http::resolve_url(s, "//other/y").to_string(), "https://other/y");  // keeps the scheme
        auto u = http::parse_url("http://[::1]:8080/a?b=c#frag");
        EXPECT_EQ(u.host, "::1");
        EXPECT_EQ(u.port, 8080);
        EXPECT_EQ(u.target, "/a?b=c");
        EXPECT_EQ(http::resolve_url(u, "d").to_string(), "http://[::1]:8080/d");
        EXPECT_EQ(http::resolve_url(http::parse_url("http://h/x/y"), "z?q").target, "/x/z?q");
    });
}

TEST(Http, KeepAliveReusesOneConnection) {
    weft::run([] {
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0);
        http::ClientSession session;
        std::string first_port;
        for (int i = 0; i < 5; ++i) {
            auto r = session.get(url(*server, "/port"));
            std::string port = r.text();
            if (i == 0) first_port = port;
            EXPECT_EQ(port, first_port);
            EXPECT_EQ(session.connections_idle(), 1u);
        }
        EXPECT_EQ(server->connections_accepted(), 1u);
        // A response whose body is dropped unread cannot return its connection.
        {
            auto r = session.get(url(*server, "/big"));
            EXPECT_EQ(session.connections_idle(), 0u);
        }
        EXPECT_EQ(session.connections_open(), 0u);
        EXPECT_EQ(session.get(url(*server, "/hello")).text(), "hello");
        EXPECT_EQ(server->connections_accepted(), 2u);
        session.close();
        server->shutdown();
    });
}

TEST(Http, PoolLimitsPerHostAndInTotal) {
    weft::run([] {
        int busy = 0, most = 0, allowed = 2;
        auto give_up = weft::Clock::now() + 10s;
        http::Application app;
        app.add_get("/work", [&](http::Request&) {
            most = std::max(most, ++busy);
            // Stay until as many requests as the limit allows have been in at once (or
            // give_up has passed), then a while longer, so that one more would show. Only
            // sleeping 30 ms would let a stalled CI machine serve them one after another.
            while (most < allowed && weft::Clock::now() < give_up) weft::sleep(1ms);
            weft::sleep(30ms);
            --busy;
            return http::Response::text("done");
        });
        auto a = http::start_http_server(app, "127.0.0.1", 0);
        auto b = http::start_http_server(app, "127.0.0.1", 0);

        http::ClientSessionOptions o1;
        o1.limit = 10;
        o1.limit_per_host = 2;
        http::ClientSession per_host(o1);
        std::vector<weft::Task<std::string>> tasks;
        for (int i = 0; i < 8; ++i)
            tasks.push_back(weft::spawn([&] { return per_host.get(url(*a, "/work")).text(); }));
        for (auto& t : weft::gather(tasks)) EXPECT_EQ(t, "done");
        EXPECT_EQ(most, 2);
        EXPECT_EQ(a->connections_accepted(), 2u);

        most = 0;
        allowed = 3;
        give_up = weft::Clock::now() + 10s;
        http::ClientSessionOptions o2;
        o2.limit = 3;
        http::ClientSession total(o2);
        tasks.clear();
        for (int i = 0; i < 12; ++i)
            tasks.push_back(weft::spawn([&, i] { return total.get(url(i % 2 ? *a : *b, "/work")).text(); }));
        weft::gather(tasks);
        EXPECT_EQ(most, 3);
        EXPECT_LE(total.connections_open(), 3u);
        per_host.close();
        total.close();
        a->shutdown();
        b->shutdown();
    });
}

TEST(Http, PipelinedRequestsAreAnsweredInOrder) {
    weft::run([] {
        http::Application app;
        // The first request takes longest: order must still be the order of arrival.
        app.add_get("/n", [](http::Request& r) {
            int n = std::stoi(r.query());
            weft::sleep(std::chrono::milliseconds(30 * (3 - n)));
            return http::Response::text("response " + r.query());
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        auto s = weft::open_connection("127.0.0.1", server->port());
        s.write("GET /n?0 HTTP/1.1\r\nHost: x\r\n\r\nGET /n?1 HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /n?2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                "GET /n?3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        std::vector<std::string> bodies;
        for (int i = 0; i < 4; ++i) bodies.push_back(raw_response(s).second);
        EXPECT_EQ(bodies[0], "response 0");
        EXPECT_EQ(bodies[1], "response 1");
        EXPECT_EQ(bodies[3], "response 3");
        EXPECT_NE(bodies[2].find("Method Not Allowed"), std::string::npos);  // POST on a GET route
        EXPECT_EQ(s.read(), "");  // Connection: close was honoured
        server->shutdown();
    });
}

TEST(Http, ChunkedBodiesBothWays) {
    weft::run([] {
        int pieces = 0;  // what the client has read so far
        http::Application app;
        app.add_post("/upper", [&pieces](http::Request& r) {
            std::string all;
            for (std::string p; !(p = r.read_chunk()).empty();) all += p;
            return http::Response::streamed([all, &pieces](http::ResponseWriter& w) {
                size_t start = 0;
                for (size_t end; (end = all.find(';', start)) != all.npos; start = end + 1) {
                    std::string piece = all.substr(start, end + 1 - start);
                    for (auto& c : piece) c = char(std::toupper(c));
                    int before = pieces;
                    w.write(piece);
                    // The next piece only once the client has read this one, so they
                    // arrive as separate pieces. (A sleep of a few ms could pass whole on a
                    // stalled CI machine, and the client read them all at once.) A client
                    // that waits for the whole body never reads: then this gives up.
                    weft::testing::wait_until([&] { return pieces > before; }, 2s);
                }
            });
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        int sent = 0;
        http::RequestOptions options;
        options.chunked_body = [&]() -> std::string {
            return sent < 5 ? "part" + std::to_string(sent++) + ";" : "";
        };
        auto r = session.request("POST", url(*server, "/upper"), options);
        EXPECT_EQ(r.status(), 200);
        EXPECT_EQ(r.headers().get("Transfer-Encoding").value_or(""), "chunked");
        std::string body;
        for (std::string p; !(p = r.read_chunk()).empty(); ++pieces) body += p;
        EXPECT_EQ(body, "PART0;PART1;PART2;PART3;PART4;");
        EXPECT_GE(pieces, 2);  // it arrived as it was written, not all at once
        EXPECT_EQ(session.connections_idle(), 1u);  // the chunked body ended cleanly
        session.close();
        server->shutdown();
    });
}

TEST(Http, BodyOverTheLimitGets413) {
    weft::run([] {
        http::HttpServerOptions options;
        options.max_body_size = 1000;
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0, options);
        http::ClientSession session;
        EXPECT_EQ(session.post(url(*server, "/echo"), std::string(900, 'a')).text(), std::string(900, 'a'));
        auto r = session.post(url(*server, "/echo"), std::string(200000, 'a'));  // by Content-Length
        EXPECT_EQ(r.status(), 413);
        EXPECT_EQ(r.headers().get("Connection").value_or(""), "close");
        r.read();
        int n = 0;
        http::RequestOptions chunked;
        chunked.chunked_body = [&]() -> std::string { return n++ < 20 ? std::string(100, 'b') : ""; };
        auto c = session.request("POST", url(*server, "/echo"), chunked);  // found while reading
        EXPECT_EQ(c.status(), 413);
        c.read();
        EXPECT_EQ(session.get(url(*server, "/hello")).text(), "hello");  // still serving
        session.close();
        server->shutdown();
    });
}

TEST(Http, HeadersOverTheLimitGet431) {
    weft::run([] {
        http::HttpServerOptions options;
        options.max_header_size = 1024;
        options.max_headers = 10;
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0, options);
        {
            auto s = weft::open_connection("127.0.0.1", server->port());
            s.write("GET /hello HTTP/1.1\r\nX-Big: " + std::string(4000, 'x') + "\r\n\r\n");
            auto [head, body] = raw_response(s);
            EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 431");
            EXPECT_EQ(s.read(), "");
        }
        {
            auto s = weft::open_connection("127.0.0.1", server->port());
            std::string many;
            for (int i = 0; i < 20; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
            s.write("GET /hello HTTP/1.1\r\n" + many + "\r\n");
            EXPECT_EQ(raw_response(s).first.substr(0, 12), "HTTP/1.1 431");
        }
        server->shutdown();
    });
}

TEST(Http, MalformedRequestGets400AndTheServerKeepsRunning) {
    weft::run([] {
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0);
        for (std::string bad : {"GARBAGE\r\n\r\n", "GET /hello HTTP/1.x\r\n\r\n",
                                "GET /hello HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                                "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                                "GET /hello HTTP/1.1\r\nNo colon\r\n\r\n"}) {
            auto s = weft::open_connection("127.0.0.1", server->port());
            s.write(bad);
            auto [head, body] = raw_response(s);
            EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 400") << bad;
            EXPECT_NE(body.find("malformed HTTP request from 127.0.0.1"), std::string::npos) << body;
            EXPECT_EQ(s.read(), "");  // and the connection is closed
        }
        // Half a request, then the client leaves: nothing to answer, nothing leaks.
        {
            auto s = weft::open_connection("127.0.0.1", server->port());
            s.write("GET /hel");
        }
        http::ClientSession session;
        EXPECT_EQ(session.get(url(*server, "/hello")).text(), "hello");
        session.close();
        server->shutdown();
    });
}

TEST(Http, HandlerExceptionGives500) {
    weft::run([] {
        int reported = 0;
        weft::Loop::current().set_exception_handler([&](weft::Loop&, const weft::ExceptionContext&) { ++reported; });
        http::Application app;
        app.add_get("/boom", [](http::Request&) -> http::Response { throw std::runtime_error("boom"); });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        EXPECT_EQ(session.get(url(*server, "/boom")).status(), 500);
        EXPECT_EQ(reported, 1);
        session.close();
        server->shutdown();
    });
}

TEST(Http, MalformedResponseIsAClearError) {
    weft::run([] {
        std::string reply;
        auto raw = canned_reply_server(reply);
        std::string base = "http://127.0.0.1:" + std::to_string(raw->port()) + "/";
        http::ClientSession session;
        auto expect_bad = [&](std::string r, const char* needle) {
            reply = std::move(r);
            try {
                session.get(base).read();
                ADD_FAILURE() << "no error for " << reply;
            } catch (const http::BadMessage& e) {
                std::string what = e.what();
                EXPECT_NE(what.find("malformed HTTP response from 127.0.0.1:"), std::string::npos) << what;
                EXPECT_NE(what.find(needle), std::string::npos) << what;
            }
        };
        expect_bad("SMTP ready\r\n\r\n", "HPE_");
        expect_bad("HTTP/1.1 2x0 OK\r\n\r\n", "HPE_INVALID_STATUS");
        expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n", "HPE_INVALID_CHUNK_SIZE");
        expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection closed in the body");
        reply = "";
        EXPECT_THROW(session.get(base), http::ServerDisconnected);
        // Close-delimited bodies (no length, no chunking) are legal and end at EOF.
        reply = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
        EXPECT_EQ(session.get(base).text(), "until the end");
        session.close();
        raw->close();
        raw->wait_closed();
    });
}

TEST(Http, TotalAndConnectTimeouts) {
    weft::run([] {
        // What the timeouts must cut short takes 30 s, and the bounds checked are 10 s: far
        // apart, so that a CI machine stalling the test for a second or two changes nothing.
        http::Application app = test_app();
        app.add_get("/stall", [](http::Request&) {
            weft::sleep(30s);
            return http::Response::text("too late");
        });
        app.add_get("/trickle", [](http::Request&) {
            return http::Response::streamed([](http::ResponseWriter& w) {
                w.write("first");
                weft::sleep(30s);
                w.write("never");
            });
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSessionOptions o1;
        o1.timeout.total = 100ms;
        http::ClientSession session(o1);
        auto started = weft::Clock::now();
        EXPECT_THROW(session.get(url(*server, "/stall")), weft::TimeoutError);  // waiting for the head
        EXPECT_LT(weft::Clock::now() - started, 10s);
        // The total covers the body too. The head and the first piece have to come within
        // the 100 ms for that to show; a stalled machine can delay even them, and then the
        // request is tried again (a few times at most).
        for (int attempt = 1;; ++attempt) {
            started = weft::Clock::now();
            std::optional<http::ClientResponse> r;
            std::string first;
            try {
                r.emplace(session.get(url(*server, "/trickle")));
                first = r->read_chunk();
            } catch (const weft::TimeoutError&) {
                if (attempt < 5) continue;
                throw;
            }
            EXPECT_EQ(first, "first");
            EXPECT_THROW(r->read_chunk(), weft::TimeoutError);
            EXPECT_LT(weft::Clock::now() - started, 10s);
            break;
        }

        // The connect timeout covers waiting for a pooled connection.
        http::ClientSessionOptions o2;
        o2.limit = 1;
        o2.timeout = {std::nullopt, 100ms};
        http::ClientSession one(o2);
        // The requests that must get a connection have a connect timeout of their own: a
        // stalled machine could take longer than 100 ms over a real connect.
        http::RequestOptions patient;
        patient.timeout = http::ClientTimeout{std::nullopt, 30s};
        auto held = one.get(url(*server, "/big"), patient);  // body unread: the only connection stays lent
        try {
            one.get(url(*server, "/hello"));
            ADD_FAILURE();
        } catch (const weft::TimeoutError& e) {
            EXPECT_NE(std::string(e.what()).find("connect timeout"), std::string::npos) << e.what();
        }
        EXPECT_EQ(held.text().size(), 1u << 20);
        EXPECT_EQ(one.get(url(*server, "/hello"), patient).text(), "hello");  // released: usable again
        session.close();
        one.close();
        server->shutdown(100ms);  // cancels the sleeping /stall and /trickle handlers
    });
}

TEST(Http, RedirectsFollowedUnlessTurnedOff) {
    weft::run([] {
        http::Application app = test_app();
        app.add_get("/old", [](http::Request&) {
            auto r = http::Response::text("moved", 302);
            r.headers.add("Location", "/hello");
            return r;
        });
        app.add_post("/form", [](http::Request& r) {
            r.read();
            auto resp = http::Response::text("", 303);
            resp.headers.add("Location", "port");  // relative
            return resp;
        });
        app.add_get("/loop", [](http::Request&) {
            auto r = http::Response::text("", 307);
            r.headers.add("Location", "/loop");
            return r;
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        auto plain = session.get(url(*server, "/old"), {.allow_redirects = false});
        EXPECT_EQ(plain.status(), 302);
        EXPECT_EQ(plain.text(), "moved");

        http::RequestOptions follow;  // aiohttp's default: allow_redirects=True
        auto r = session.get(url(*server, "/old"), follow);
        EXPECT_EQ(r.status(), 200);
        EXPECT_EQ(r.text(), "hello");
        EXPECT_EQ(r.url().target, "/hello");

        auto p = session.post(url(*server, "/form"), "x=1", follow);  // 303: GET the new place
        EXPECT_EQ(p.status(), 200);
        EXPECT_EQ(p.url().target, "/port");
        p.read();

        follow.max_redirects = 3;
        EXPECT_THROW(session.get(url(*server, "/loop"), follow), http::TooManyRedirects);
        session.close();
        server->shutdown();
    });
}

TEST(Http, GracefulShutdownLetsRequestsInFlightFinish) {
    weft::run([] {
        bool handler_running = false;
        http::Application app = test_app();
        app.add_get("/slow", [&](http::Request&) {
            handler_running = true;
            weft::sleep(300ms);
            return http::Response::text("slow");
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession idle_session, busy_session;
        EXPECT_EQ(idle_session.get(url(*server, "/hello")).text(), "hello");  // now idle, kept alive
        auto in_flight = weft::spawn([&] {
            auto r = busy_session.get(url(*server, "/slow"));
            return std::make_pair(r.headers().get("Connection", ""), r.text());
        });
        // Until the /slow handler is running: a fixed sleep can end before the request
        // has even arrived on a stalled CI machine.
        ASSERT_TRUE(weft::testing::wait_until([&] { return handler_running; }));
        auto started = weft::Clock::now();
        server->shutdown(30s);  // a grace far longer than the bound below, and than any stall
        auto [connection, body] = in_flight.get();
        EXPECT_EQ(body, "slow");
        EXPECT_EQ(connection, "close");
        EXPECT_LT(weft::Clock::now() - started, 10s);  // it ended with the request, not the grace
        EXPECT_EQ(busy_session.connections_open(), 0u);
        // New connections are refused; the idle one was closed (a retry finds nothing).
        EXPECT_THROW(idle_session.get(url(*server, "/hello")), weft::SystemError);
        idle_session.close();
        busy_session.close();
    });
}

TEST(Http, GracefulShutdownCancelsWhatOutlivesTheGrace) {
    weft::run([] {
        http::Application app;
        bool handler_running = false;
        app.add_get("/forever", [&](http::Request&) {
            handler_running = true;
            weft::sleep(1h);
            return http::Response::text("");
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        auto t = weft::spawn([&] { return session.get(url(*server, "/forever")); });
        // Until the handler runs (a fixed sleep can end before the request has arrived on a
        // stalled CI machine; the shutdown would then meet no request in flight).
        ASSERT_TRUE(weft::testing::wait_until([&] { return handler_running; }));
        auto started = weft::Clock::now();
        server->shutdown(100ms);
        EXPECT_LT(weft::Clock::now() - started, 10s);  // the grace, not the handler's hour
        EXPECT_THROW(t.get(), http::ServerDisconnected);
        session.close();
    });
}

// Review findings: trailer fields of a chunked request never join its headers, and a
// reason phrase with CR/LF cannot inject header lines into the response.
TEST(Http, TrailersAreDroppedAndReasonsCannotInject) {
    weft::run([] {
        http::Application app;
        app.add_post("/t", [](http::Request& r) {
            std::string before(r.headers().get("X-Early", "-"));
            std::string body = r.read();
            std::string trailer(r.headers().get("X-Trailer", "none"));
            return http::Response::text(before + "|" + body + "|" + trailer);
        });
        app.add_get("/reason", [](http::Request&) {
            http::Response resp = http::Response::text("r");
            resp.reason = "OK\r\nX-Injected: 1";
            return resp;
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        auto s = weft::open_connection("127.0.0.1", server->port());
        s.write("POST /t HTTP/1.1\r\nHost: x\r\nX-Early: e\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n0\r\nX-Trailer: sneaky\r\n\r\n"
                "GET /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        EXPECT_EQ(raw_response(s).second, "e|abc|none");
        auto [head, body] = raw_response(s);
        EXPECT_EQ(body, "r");
        EXPECT_EQ(head.find("X-Injected"), std::string::npos) << head;
        EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
        server->shutdown();
    });
}

// HTTP/1.0 gets a streamed response as raw bytes ended by the close (it has no chunked
// encoding); a client that stalls mid-body is disconnected after io_timeout.
TEST(Http, Http10StreamingAndStalledClients) {
    weft::run([] {
        http::Application app;
        app.add_get("/stream", [](http::Request&) {
            return http::Response::streamed([](http::ResponseWriter& w) {
                w.write("one ");
                w.write("two");
            });
        });
        app.add_post("/ignore", [](http::Request&) { return http::Response::text("ignored"); });
        http::HttpServerOptions options;
        options.io_timeout = 200ms;
        auto server = http::start_http_server(app, "127.0.0.1", 0, options);

        auto s = weft::open_connection("127.0.0.1", server->port());
        s.write("GET /stream HTTP/1.0\r\n\r\n");
        // Generous bounds: they only turn a hang into a failure (a stalled CI machine can
        // add a second or two to a passing run).
        std::string all = weft::wait_for(weft::spawn([&] { return s.read_all(); }), 10s);
        EXPECT_EQ(all.find("Transfer-Encoding"), std::string::npos) << all;
        EXPECT_NE(all.find("Connection: close"), std::string::npos) << all;
        EXPECT_EQ(all.substr(all.find("\r\n\r\n") + 4), "one two");

        // Announces 100 bytes, sends 3 and stalls: the handler ignores the body, the server
        // cannot drain it, and closes once io_timeout has passed.
        auto stalled = weft::open_connection("127.0.0.1", server->port());
        stalled.write("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
        auto start = weft::Clock::now();
        std::string got = weft::wait_for(weft::spawn([&] { return stalled.read_all(); }), 10s);
        EXPECT_EQ(got, "");
        EXPECT_GE(weft::Clock::now() - start, 150ms);
        server->shutdown();
    });
}

namespace {
// True once the connection of `fd` was reset by its peer (an error is pending on it); a
// plain close would only make it readable (EOF).
bool reset_by_peer(int fd) {
    pollfd p{fd, 0, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}
}  // namespace

// A client that stops taking a response is dropped once io_timeout passes: the server
// resets the connection instead of flushing the rest to it for the linger time.
TEST(Http, ClientThatStopsTakingTheResponseIsReset) {
    weft::run([] {
        const std::string big(16 << 20, 'b');  // more than both sockets' buffers hold
        http::Application app;
        app.add_get("/big", [&](http::Request&) { return http::Response::text(big); });
        http::HttpServerOptions options;
        options.io_timeout = 100ms;
        auto server = http::start_http_server(app, "127.0.0.1", 0, options);
        auto c = weft::open_connection("127.0.0.1", server->port());
        int small = 64 * 1024;
        ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        c.write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        ASSERT_TRUE(weft::testing::wait_until([&] { return reset_by_peer(c.fd()); }));
        size_t got = 0;
        try {
            for (std::string piece; !(piece = c.read()).empty();) got += piece.size();
            ADD_FAILURE() << "a clean EOF after " << got << " bytes";
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.code().value(), ECONNRESET) << e.what();
        }
        EXPECT_LT(got, big.size());
        server->shutdown();
    });
}

// A request given up midway (here: its total timeout passes while the server is not
// taking the body) resets the connection; the rest of the body is not sent on.
TEST(Http, ClientGivingUpMidRequestResetsTheConnection) {
    weft::run([] {
        bool reset_seen = false;
        auto server = weft::start_server(
            [&](weft::Stream& s) {
                s.read_until("\r\n\r\n");  // the head; the body is never read
                reset_seen = weft::testing::wait_until([&] { return reset_by_peer(s.fd()); });
            },
            "127.0.0.1", 0);
        http::ClientSession session;
        http::RequestOptions o;
        o.timeout = http::ClientTimeout{100ms, std::nullopt};
        std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";
        EXPECT_THROW(session.post(url, std::string(16 << 20, 'x'), o), weft::TimeoutError);
        EXPECT_TRUE(weft::testing::wait_until([&] { return reset_seen; }));
        server->close();
        server->wait_closed();
    });
}

// bytes() is aiohttp's read(): the body exactly as sent, NUL and high bytes included.
TEST(Http, BytesIsTheRawBody) {
    weft::run([] {
        const std::string raw("\0\xff\xfe\r\n\x01 binary\0", 14);
        http::Application app;
        app.add_get("/raw", [&](http::Request&) {
            return http::Response::text(raw, 200, "application/octet-stream");
        });
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSession session;
        auto r = session.get(url(*server, "/raw"));
        std::string body = r.bytes();
        EXPECT_EQ(body.size(), raw.size());
        EXPECT_EQ(body, raw);
        EXPECT_EQ(r.bytes(), "");  // read to the end: nothing more
        session.close();
        server->shutdown();
    });
}

// Session-wide and per-request headers are sent (the request's win over the session's of
// the same name); Content-Length and Transfer-Encoding from either list are dropped, since
// the body decides its framing: a stray one would make the request malformed (or smuggle).
TEST(Http, RequestHeadersReachTheServer) {
    weft::run([] {
        http::Application app;
        auto dump = [](http::Request& r) {
            std::string out;
            for (const auto& [name, value] : r.headers()) out += name + ": " + value + "\n";
            return http::Response::text(out + "body=" + r.read());
        };
        app.add_get("/headers", dump);
        app.add_post("/headers", dump);
        auto server = http::start_http_server(app, "127.0.0.1", 0);
        http::ClientSessionOptions options;
        options.headers = {{"X-Session", "s"},
                           {"X-Both", "from session"},
                           {"User-Agent", "custom-agent"},
                           {"Content-Length", "999"},
                           {"Transfer-Encoding", "chunked"}};
        http::ClientSession session(options);
        http::RequestOptions mine;
        mine.headers = {{"X-Request", "r"}, {"x-both", "from request"}, {"Content-Length", "1"}};
        auto count = [](const std::string& text, const std::string& needle) {
            size_t n = 0;
            for (size_t at = 0; (at = text.find(needle, at)) != text.npos; at += needle.size()) ++n;
            return n;
        };

        auto r = session.get(url(*server, "/headers"), mine);
        ASSERT_EQ(r.status(), 200);
        std::string got = r.text();
        EXPECT_EQ(count(got, "X-Session: s\n"), 1u) << got;
        EXPECT_EQ(count(got, "X-Request: r\n"), 1u) << got;
        EXPECT_EQ(count(got, "x-both: from request\n"), 1u) << got;
        EXPECT_EQ(count(got, "from session"), 0u) << got;
        EXPECT_EQ(count(got, "User-Agent: custom-agent\n"), 1u) << got;
        EXPECT_EQ(count(got, "User-Agent"), 1u) << got;  // no default next to the session's
        EXPECT_EQ(count(got, "Content-Length"), 0u) << got;
        EXPECT_EQ(count(got, "Transfer-Encoding"), 0u) << got;
        std::string host = "Host: 127.0.0.1:" + std::to_string(server->port()) + "\n";
        EXPECT_EQ(count(got, host), 1u) << got;

        // With a body its own length is the only one.
        auto p = session.post(url(*server, "/headers"), "abc", mine);
        ASSERT_EQ(p.status(), 200);
        got = p.text();
        EXPECT_EQ(count(got, "Content-Length: 3\n"), 1u) << got;
        EXPECT_EQ(count(got, "Content-Length"), 1u) << got;
        EXPECT_EQ(count(got, "Transfer-Encoding"), 0u) << got;
        EXPECT_EQ(got.substr(got.find("body=")), "body=abc");
        EXPECT_EQ(count(got, "X-Session: s\n"), 1u) << got;

        // Without headers of its own the session's go out as they are.
        got = session.get(url(*server, "/headers")).text();
        EXPECT_EQ(count(got, "X-Both: from session\n"), 1u) << got;
        EXPECT_EQ(count(got, "Content-Length"), 0u) << got;
        session.close();
        server->shutdown();
    });
}

// A send that fails because the server answered early and closed: the answer is read,
// and an interim 100 Continue before it is skipped as on the normal path.
TEST(Http, EarlyAnswerAfterASendErrorSkipsInterimResponses) {
    weft::run([] {
        auto raw = weft::start_server(
            [](weft::Stream& s) {
                s.read_until("\r\n\r\n");
                s.write("HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n"
                        "Connection: close\r\n\r\n"
                        "too big\n");
                s.drain();
                // Returning closes the socket with the body unread: the kernel resets the
                // connection, and the client's send fails.
            },
            "127.0.0.1", 0);
        http::ClientSession session;
        // Far more than the socket buffers hold, so the send is still going at the reset.
        auto r = session.post("http://127.0.0.1:" + std::to_string(raw->port()) + "/upload",
                              std::string(64 << 20, 'u'));
        EXPECT_EQ(r.status(), 413);
        EXPECT_EQ(r.text(), "too big\n");
        session.close();
        raw->close();
        raw->wait_closed();
    });
}

// The connect timeout covers the TCP connect itself: a listener that never accepts, with
// its backlog full, drops further SYNs, so a connect to it hangs — on loopback.
TEST(Http, ConnectTimeoutWhenTheConnectHangs) {
    weft::run([] {
        int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ASSERT_GE(listener, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ASSERT_EQ(::listen(listener, 0), 0);  // room for one connection in the accept queue
        socklen_t len = sizeof addr;
        ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
        std::vector<int> fillers;
        for (int i = 0; i < 4; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            ASSERT_GE(fd, 0);
            ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // EINPROGRESS
            fillers.push_back(fd);
        }
        // The listener is readable once a connection waits in its accept queue: full.
        ASSERT_TRUE(weft::testing::wait_until([&] {
            pollfd p{listener, POLLIN, 0};
            return ::poll(&p, 1, 0) == 1;
        }));

        http::ClientSessionOptions options;
        options.timeout = {std::nullopt, 100ms};
        http::ClientSession session(options);
        auto started = weft::Clock::now();
        try {
            session.get("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/");
            ADD_FAILURE() << "the connect did not time out";
        } catch (const weft::TimeoutError& e) {
            EXPECT_NE(std::string(e.what()).find("connect timeout"), std::string::npos) << e.what();
        }
        EXPECT_GE(weft::Clock::now() - started, 90ms);
        EXPECT_LT(weft::Clock::now() - started, 10s);
        EXPECT_EQ(session.connections_open(), 0u);  // the attempt's slot was given back
        for (int fd : fillers) ::close(fd);
        ::close(listener);
        session.close();
    });
}

// A connection counts as busy from the first byte of a request: shutdown() lets it finish
// instead of dropping it unanswered — whether the server has parsed part of the head
// already or the bytes still wait in its socket.
TEST(Http, GracefulShutdownAnswersARequestAlreadyBegun) {
    weft::run([] {
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0);
        // Half a head: waiting for it lets the server's fiber run and parse it.
        auto half = weft::open_connection("127.0.0.1", server->port());
        half.write("GET /hello HTTP/1.1\r\nHo");
        half.drain();
        ASSERT_TRUE(weft::testing::wait_until([&] { return peer_has_everything(half); }));
        // One idle connection, which shutdown closes at once.
        auto idle = weft::open_connection("127.0.0.1", server->port());
        // A whole head the server has not read yet: written once it has accepted the
        // connection, and spun for without letting the loop run.
        auto whole = weft::open_connection("127.0.0.1", server->port());
        ASSERT_TRUE(weft::testing::wait_until([&] { return server->connections_accepted() == 3; }));
        whole.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        auto give_up = weft::Clock::now() + 10s;
        while (!peer_has_everything(whole) && weft::Clock::now() < give_up) {
        }
        ASSERT_TRUE(peer_has_everything(whole));

        auto started = weft::Clock::now();
        auto shutting = weft::spawn([&] { server->shutdown(30s); });
        ASSERT_TRUE(weft::testing::wait_until([&] { return refused(*server); }));
        half.write("st: x\r\n\r\n");
        for (weft::Stream* s : {&half, &whole}) {
            auto [head, body] = weft::wait_for(weft::spawn([&] { return raw_response(*s); }), 10s);
            EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
            EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
            EXPECT_EQ(body, "hello");
            EXPECT_EQ(s->read(), "");
        }
        EXPECT_EQ(weft::wait_for(weft::spawn([&] { return idle.read(); }), 10s), "");
        weft::wait_for(std::move(shutting), 10s);
        EXPECT_LT(weft::Clock::now() - started, 10s);  // with the requests, not the grace
    });
}

// The header-size limit holds for the head's raw bytes — request line, CRLFs, ": " and
// whitespace padding included — not only for what the parser reports as names and values.
TEST(Http, HeaderLimitCountsTheRawBytesOfTheHead) {
    weft::run([] {
        http::HttpServerOptions options;
        options.max_header_size = 1024;
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0, options);
        // A head of `size` bytes, nearly all of it spaces before a field's value.
        auto padded = [](size_t size) {
            std::string start = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad:";
            std::string end = "v\r\n\r\n";
            return start + std::string(size - start.size() - end.size(), ' ') + end;
        };
        {  // exactly the limit, in two pieces: served
            auto s = weft::open_connection("127.0.0.1", server->port());
            std::string head = padded(1024);
            s.write(head.substr(0, 600));
            s.drain();
            ASSERT_TRUE(weft::testing::wait_until([&] { return peer_has_everything(s); }));
            s.write(head.substr(600));
            auto [status, body] = raw_response(s);
            EXPECT_EQ(status.substr(0, 12), "HTTP/1.1 200") << status;
            EXPECT_EQ(body, "hello");
        }
        for (size_t size : {1025, 4000}) {  // one byte over, and far over: 431
            auto s = weft::open_connection("127.0.0.1", server->port());
            s.write(padded(size));
            auto [status, body] = raw_response(s);
            EXPECT_EQ(status.substr(0, 12), "HTTP/1.1 431") << size << ": " << status;
            EXPECT_NE(body.find("over the limit of 1024 bytes"), std::string::npos) << body;
        }
        server->shutdown();

        // The client's limit on a response head likewise.
        std::string reply;
        auto raw = canned_reply_server(reply);
        http::ClientSessionOptions client_options;
        client_options.max_header_size = 512;
        http::ClientSession session(client_options);
        std::string base = "http://127.0.0.1:" + std::to_string(raw->port()) + "/";
        std::string start = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad:", end = "v\r\n\r\n";
        reply = start + std::string(512 - start.size() - end.size(), '\t') + end + "ok";
        EXPECT_EQ(session.get(base).text(), "ok");
        reply = start + std::string(513 - start.size() - end.size(), '\t') + end + "ok";
        try {
            session.get(base);
            ADD_FAILURE() << "a 513-byte head passed a 512-byte limit";
        } catch (const http::BadMessage& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("over the limit of 512 bytes"), std::string::npos) << what;
        }
        session.close();
        raw->close();
        raw->wait_closed();
    });
}

// A kept-alive connection with no request for keepalive_timeout is closed by the server.
TEST(Http, KeepAliveIdleTimeoutClosesTheConnection) {
    weft::run([] {
        http::HttpServerOptions options;
        options.keepalive_timeout = 200ms;
        auto server = http::start_http_server(test_app(), "127.0.0.1", 0, options);
        auto s = weft::open_connection("127.0.0.1", server->port());
        s.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        auto [head, body] = raw_response(s);
        EXPECT_EQ(head.find("Connection: close"), std::string::npos) << head;  // kept alive
        EXPECT_EQ(body, "hello");
        auto idle_from = weft::Clock::now();
        // The bound only turns a connection left open into a failure.
        EXPECT_EQ(weft::wait_for(weft::spawn([&] { return s.read(); }), 10s), "");
        EXPECT_GE(weft::Clock::now() - idle_from, 150ms);
        server->shutdown();
    });
}

// A pooled connection the server has dropped is not used for the next request: it is seen
// closed when taken from the pool, or — when the server closes it just as the request goes
// out — the request is sent again once on a fresh connection. Only when it may be sent
// twice: a POST that meets a dropped connection fails.
TEST(Http, StalePooledConnectionIsRetriedOnAFreshOne) {
    weft::run([] {
        // Each connection answers its first request; the second it reads and then closes
        // without an answer, as a server timing it out at that moment would.
        int connections = 0;
        bool first_closed = false;
        auto raw = weft::start_server(
            [&](weft::Stream& s) {
                int id = ++connections;
                for (int request = 0;; ++request) {
                    std::string head = s.read_until("\r\n\r\n");
                    if (request == 1 || head.empty()) break;
                    std::string body = "connection " + std::to_string(id);
                    s.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body);
                    s.drain();
                    if (id == 1 && head.starts_with("GET /close-idle")) break;  // closes while idle
                }
                s.close();
                if (id == 1) first_closed = true;
            },
            "127.0.0.1", 0);
        std::string base = "http://127.0.0.1:" + std::to_string(raw->port());
        http::ClientSession session;

        // Closed while idle in the pool.
        EXPECT_EQ(session.get(base + "/close-idle").text(), "connection 1");
        EXPECT_EQ(session.connections_idle(), 1u);
        ASSERT_TRUE(weft::testing::wait_until([&] { return first_closed; }));
        EXPECT_EQ(session.get(base + "/").text(), "connection 2");  // now idle in the pool
        // Closed as the request arrives: connection 2 reads it and closes; sent again on 3.
        EXPECT_EQ(session.get(base + "/").text(), "connection 3");
        EXPECT_EQ(connections, 3);
        // A POST is not sent twice: connection 3 drops it, and that is the answer.
        try {
            session.post(base + "/", "once");
            ADD_FAILURE() << "the POST got an answer";
        } catch (const http::ServerDisconnected&) {
        } catch (const weft::SystemError&) {  // a reset, had its body been left unread
        }
        EXPECT_EQ(connections, 3);
        session.close();
        raw->close();
        raw->wait_closed();
    });
}
