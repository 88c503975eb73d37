// An HTTP/1.1 client for fibers (aiohttp's ClientSession): requests reuse kept-alive
// connections from a pool limited in total and per host; a response's body is read whole
// (read / text / bytes) or in pieces (read_chunk), and its connection goes back to the pool when
// the body has been read to the end. Chunked transfer encoding both ways, connect and
// total timeouts, redirects when asked for. A malformed response is BadMessage saying
// what was wrong and who sent it. http:// only (no TLS). Loop thread only: a session and
// its responses belong to the loop that made them.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <weft/http.hpp>
#include <weft/loop.hpp>

namespace weft::http {

namespace detail {
class ConnectionPool;
struct PooledConnection;
}  // namespace detail

// aiohttp.ClientTimeout. Unset: no limit.
struct ClientTimeout {
    // The whole request: waiting for a connection, connecting, sending, and reading the
    // response head and body. TimeoutError when it passes.
    std::optional<Duration> total = std::chrono::minutes(5);
    // Waiting for a free connection from the pool plus connecting.
    std::optional<Duration> connect;
};

struct ClientSessionOptions {
    size_t limit = 100;          // connections in total, busy and idle (0: no limit)
    size_t limit_per_host = 0;   // connections per host:port (0: no limit)
    ClientTimeout timeout;
    // Sent with every request (a request's own fields of the same name win). Content-Length
    // and Transfer-Encoding come from each request's body and Host from its URL: those
    // are dropped from here.
    Headers headers;
    // A pooled connection idle for longer is closed instead of reused.
    Duration keepalive_timeout = std::chrono::seconds(15);
    size_t max_header_size = 64 * 1024;  // a response head's raw bytes; over it: BadMessage
    size_t max_headers = 256;
};

struct RequestOptions {
    Headers headers;   // Content-Length and Transfer-Encoding come from the body, not from here
    std::string body;  // sent with Content-Length
    // When set, the body is sent chunked instead: called until it returns "".
    std::function<std::string()> chunked_body;
    bool allow_redirects = false;  // follow 301/302/303/307/308 (opt-in, unlike aiohttp)
    int max_redirects = 10;        // then TooManyRedirects
    std::optional<ClientTimeout> timeout;  // instead of the session's
};

class ClientResponse {
public:
    ClientResponse(ClientResponse&&) noexcept;
    ClientResponse& operator=(ClientResponse&&) noexcept;
    ~ClientResponse();  // a body not read to the end closes its connection

    int status() const noexcept;
    const std::string& reason() const noexcept;
    const Headers& headers() const noexcept;
    int version_minor() const noexcept;
    const Url& url() const noexcept;  // after redirects, the one that answered
    bool ok() const noexcept { return status() < 400; }
    // ClientResponseError for a status of 400 or more.
    void raise_for_status() const;

    // The next piece of the body as it arrives; empty at its end (the connection then
    // returns to the pool). Bounded memory however long the body is.
    std::string read_chunk();
    std::string read();  // the whole (rest of the) body
    // aiohttp's text() and read(): the body as it came, raw bytes in a std::string like
    // every body in weft (no charset decoding, no Content-Encoding undone).
    std::string text() { return read(); }
    std::string bytes() { return read(); }
    // Closes the connection now, dropping any unread body.
    void close() noexcept;

    struct State;

private:
    friend class ClientSession;
    explicit ClientResponse(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

class ClientSession {
public:
    explicit ClientSession(ClientSessionOptions options = {});
    ~ClientSession();  // close()
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    // Sends a request and returns once the response head has arrived. Throws InvalidUrl,
    // SystemError (connect refused, reset, ...), TimeoutError, BadMessage,
    // ServerDisconnected (closed with no response), TooManyRedirects.
    ClientResponse request(std::string_view method, std::string_view url, RequestOptions options = {});
    ClientResponse get(std::string_view url, RequestOptions options = {}) {
        return request("GET", url, std::move(options));
    }
    ClientResponse post(std::string_view url, std::string body, RequestOptions options = {}) {
        options.body = std::move(body);
        return request("POST", url, std::move(options));
    }

    // Closes idle connections; busy ones close when their response is done. Later
    // requests throw InvalidStateError.
    void close() noexcept;
    bool closed() const noexcept;
    size_t connections_open() const noexcept;  // busy and idle
    size_t connections_idle() const noexcept;

private:
    ClientResponse send_once(const std::string& method, const Url& url, const RequestOptions& options,
                             const ClientTimeout& timeout, std::optional<TimePoint> deadline);

    ClientSessionOptions options_;
    std::shared_ptr<detail::ConnectionPool> pool_;
};

}  // namespace weft::http
