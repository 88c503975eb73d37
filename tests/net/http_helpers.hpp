// What the HTTP tests (http_parser_test, http_router_test, http_session_test,
// http_server_test) share: an application with the routes most of them use, its URLs, a
// raw server that sends any bytes as its answer, reading a response off a raw stream, and
// two probes of a socket's state that a test waits on instead of sleeping.
#pragma once

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#if defined(__linux__)
#include <linux/sockios.h>
#endif

#include <memory>
#include <string>
#include <utility>

#include <weft/weft.hpp>

namespace weft::test {

// A raw TCP server that answers any request head with `reply` (as it is when the request
// arrives), then half-closes: for feeding the client responses no real server would send.
inline std::unique_ptr<Server> canned_reply_server(const std::string& reply) {
    return start_server(
        [&reply](Stream& s) {
            s.read_until("\r\n\r\n");
            s.write(reply);
            s.write_eof();
        },
        "127.0.0.1", 0);
}

inline std::string url(const http::HttpServer& server, const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

// An application with a few routes most tests use.
inline http::Application test_app() {
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

// Reads one response off a raw stream: its head, and a body of Content-Length bytes.
inline std::pair<std::string, std::string> raw_response(Stream& s) {
    std::string head = s.read_until("\r\n\r\n");
    size_t at = head.find("Content-Length: ");
    size_t length = at == head.npos ? 0 : std::stoul(head.substr(at + 16));
    return {head, s.read_exactly(length)};
}

// True once everything written to `s` has been acknowledged by the peer's kernel: it is in
// the peer's receive queue, whether or not the peer has read it yet.
inline bool peer_has_everything(Stream& s) {
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

// True once the connection of `fd` was reset by its peer (an error is pending on it); a
// plain close would only make it readable (EOF).
inline bool reset_by_peer(int fd) {
    pollfd p{fd, 0, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

}  // namespace weft::test
