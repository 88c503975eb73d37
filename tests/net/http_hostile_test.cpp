// Hostile and careless HTTP peers (issue 20, item 2). Against the client: header names
// that are not tokens, non-ASCII paths and servers that answer 100 Continue forever.
#include <weft/weft.hpp>

#include <string>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;

namespace {

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != haystack.npos; }

}  // namespace

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
