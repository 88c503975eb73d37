// HTTP/1.1 messages as weft's parser reads them, on both sides of a loopback connection:
// bodies by Content-Length, chunked (both ways, trailers dropped) and by close, binary
// bodies, the size limits on heads and bodies (raw bytes counted), and malformed requests
// (400, the server goes on) and responses (a clear BadMessage). Raw streams stand in for
// a peer that sends what weft never would.
#include <weft/weft.hpp>

#include <string>

#include "http_helpers.hpp"
#include "../common/wait_until.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;
using weft::test::canned_reply_server;
using weft::test::peer_has_everything;
using weft::test::raw_response;
using weft::test::test_app;
using weft::test::url;

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
