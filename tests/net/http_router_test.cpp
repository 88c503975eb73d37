// Requests reaching an Application's routes: GET and POST handlers, 404 for an unknown
// path, 405 with Allow for a known path and another method, HEAD answered from the GET
// route without a body, all over one kept-alive connection.
#include <weft/weft.hpp>

#include <string>

#include "http_helpers.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;
using weft::test::test_app;
using weft::test::url;

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
