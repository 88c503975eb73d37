// ClientSession over plain HTTP against weft's server and raw ones: URLs it takes or
// rejects, keep-alive reuse and the pool's limits, stale pooled connections (seen when
// taken, or retried once), the headers it sends, redirects, total and connect timeouts,
// and a request given up or answered early. The aiohttp defaults, https, cookies and
// content decoding are in http_client_test.cpp.
#include <weft/weft.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "http_helpers.hpp"
#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;
using weft::test::reset_by_peer;
using weft::test::test_app;
using weft::test::url;

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
