// An HTTP/1.1 server on weft streams (aiohttp.web's shape): an Application routes requests
// by method and path to handlers, each a plain function run in the connection's fiber
// that returns a Response. Connections are kept alive; pipelined requests are answered in
// order (one at a time, so a handler may suspend freely). Header and body sizes are
// limited; a malformed or over-limit request gets 400 / 413 / 431 and its connection is
// closed while the server keeps running. shutdown() is graceful: it stops accepting,
// closes idle connections and lets requests in flight finish. https with options.ssl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http.hpp>
#include <weft/loop.hpp>
#include <weft/tcp.hpp>

namespace weft::http {

namespace detail {
class MessageReader;
struct MessageHead;
struct ConnectionState;
}  // namespace detail

struct HttpServerOptions {
    // The request head's raw bytes (request line, fields, CRLFs, padding); over it: 431.
    size_t max_header_size = 16 * 1024;
    size_t max_headers = 100;            // over it: 431
    size_t max_body_size = 1024 * 1024;  // aiohttp's client_max_size; over it: 413
    // The time limits, so that no client can hold a connection (and its descriptor)
    // forever; README's HTTP section lists them. A huge value means "never".
    //
    // The whole request head, from its first byte to its blank line (Go's
    // ReadHeaderTimeout, Node's headersTimeout): a head sent a byte at a time is cut here.
    // A new connection's first head counts from the accept, since a client that connects
    // and says nothing is not resting between requests. Past it the connection is closed
    // without an answer, as Go does (a client that slow is not waiting for one).
    Duration header_timeout = std::chrono::seconds(20);
    // A kept-alive connection with no new request (not a byte of one) is closed after this.
    Duration keepalive_timeout = std::chrono::seconds(60);
    // The longest wait for the next piece of a request body (nginx's client_body_timeout):
    // a client that stops sending is cut, one sending slowly is not. A handler reading the
    // body gets weft::TimeoutError (answered 408 if it lets it go); the connection closes.
    Duration body_timeout = std::chrono::seconds(60);
    // The longest a client may take to send the part of a body its handler left unread
    // (it must be drained before the next request), or to take in a response or an
    // answer (100 Continue, an error); past it the connection is closed.
    Duration io_timeout = std::chrono::seconds(60);
    weft::ServerOptions tcp{};           // backlog, SO_REUSEPORT, stream buffers
    // Serve https: a Context::server() with load_cert_chain done. Each connection's TLS
    // handshake runs before its first request, bounded by tcp.ssl_handshake_timeout (a
    // failed one closes the connection and the server goes on). Set here or in tcp.ssl.
    // serve_connection serves the stream it is given: start_tls it first for https.
    std::optional<ssl::Context> ssl{};
};

// One request, valid during its handler. The body is read on demand (aiohttp's
// `await request.text()`), in pieces or whole; what the handler leaves unread is
// discarded before the next request on the connection.
class Request {
public:
    const std::string& method() const noexcept;  // "GET", "POST", ...
    const std::string& target() const noexcept;  // as sent: path and query
    const std::string& path() const noexcept { return path_; }
    const std::string& query() const noexcept { return query_; }  // after '?', undecoded
    const Headers& headers() const noexcept;
    int version_minor() const noexcept;          // `HTTP/1.<n>`
    const SocketAddress& peer() const noexcept { return *peer_; }

    // The next piece of the body; empty at its end. BadMessage(413) past max_body_size;
    // weft::TimeoutError when the client sends nothing for body_timeout (the connection
    // then closes after the response: the rest of the body will not come).
    std::string read_chunk();
    // The whole (rest of the) body.
    std::string read();
    std::string text() { return read(); }

private:
    friend struct detail::ConnectionState;
    Request(detail::ConnectionState& connection, const SocketAddress& peer);
    void send_continue();

    detail::ConnectionState* connection_;
    detail::MessageReader* reader_;
    const SocketAddress* peer_;
    std::string path_, query_;
    bool expect_continue_ = false;  // the client waits for "100 Continue" before the body
};

// Sends a streamed response body as chunks (Transfer-Encoding: chunked).
class ResponseWriter {
public:
    // Sends one chunk (nothing for an empty one) and applies drain()'s back-pressure; a
    // client that takes nothing for io_timeout ends the response with TimeoutError.
    void write(std::string_view chunk);

private:
    friend struct detail::ConnectionState;
    ResponseWriter(Stream& stream, bool chunked, Duration io_timeout)
        : stream_(&stream), chunked_(chunked), io_timeout_(io_timeout) {}
    Stream* stream_;
    bool chunked_;  // false for HTTP/1.0 clients: raw bytes, the end marked by closing
    Duration io_timeout_;  // for each write's drain (the client must keep reading)
};

struct Response {
    int status = 200;
    std::string reason;  // empty: the standard phrase
    Headers headers;     // Content-Length, Transfer-Encoding and Connection are set by the server
    std::string body;
    // When set, the body is whatever this writes, sent chunked (body is ignored).
    std::function<void(ResponseWriter&)> stream;

    static Response text(std::string body, int status = 200,
                         std::string content_type = "text/plain; charset=utf-8");
    static Response json(std::string body, int status = 200);
    static Response streamed(std::function<void(ResponseWriter&)> writer,
                             std::string content_type = "application/octet-stream");
};

using Handler = std::function<Response(Request&)>;

// Routes by method and exact path; a path ending in '*' matches any path with that prefix.
// An unknown path gets 404; a known path with another method 405 (with Allow). GET routes
// answer HEAD too, without the body. Handlers may be called from several loops at once
// when the application is served by a ServerGroup.
class Application {
public:
    void add_route(std::string method, std::string path, Handler handler);
    void add_get(std::string path, Handler handler) { add_route("GET", std::move(path), std::move(handler)); }
    void add_post(std::string path, Handler handler) { add_route("POST", std::move(path), std::move(handler)); }
    void add_put(std::string path, Handler handler) { add_route("PUT", std::move(path), std::move(handler)); }
    void add_delete(std::string path, Handler handler) {
        add_route("DELETE", std::move(path), std::move(handler));
    }

    // Calls the matching handler, or answers 404 / 405.
    Response handle(Request& request) const;

private:
    struct Route {
        std::string method, path;
        bool prefix;
        Handler handler;
    };
    std::vector<Route> routes_;
};

class HttpServer {
public:
    ~HttpServer();  // closes at once: connections still running are cancelled
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    uint16_t port() const noexcept;
    const std::vector<SocketAddress>& addresses() const noexcept;
    // Connections accepted so far (tells keep-alive reuse from reconnects).
    size_t connections_accepted() const noexcept;

    // Graceful shutdown: stops accepting, closes idle keep-alive connections, lets requests
    // in flight finish (their responses say Connection: close), and returns once every
    // connection is gone. A request is in flight from its first byte (over TLS, from its
    // first record that decrypts): one whose head is still arriving is read and answered
    // too. Connections still busy after `grace` are cancelled.
    void shutdown(Duration grace = std::chrono::seconds(10));
    void close();        // stops accepting only
    void wait_closed();  // until closed and every connection is done
    void serve_forever();

    struct State;

private:
    friend std::unique_ptr<HttpServer> start_http_server(Application, const std::string&, uint16_t,
                                                         HttpServerOptions);
    explicit HttpServer(std::shared_ptr<State> s);
    std::shared_ptr<State> s_;
};

// Listens on host:port (0: a free port) and serves `app` on the running loop.
std::unique_ptr<HttpServer> start_http_server(Application app, const std::string& host, uint16_t port,
                                              HttpServerOptions options = {});

// Serves HTTP on one accepted connection until either side closes it: the building block
// for other accept loops, e.g. one loop per core with a ServerGroup:
//     ServerGroup group(2, [&](Stream& s) { http::serve_connection(s, app); }, host, port);
void serve_connection(Stream& stream, const Application& app, const HttpServerOptions& options = {});

}  // namespace weft::http
