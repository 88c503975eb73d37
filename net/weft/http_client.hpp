// An HTTP/1.1 client for fibers (aiohttp's ClientSession), over http:// and https://:
// requests reuse kept-alive connections from a pool limited in total and per host; a
// response's body is read whole (read / text / bytes) or in pieces (read_chunk), and its
// connection goes back to the pool when the body has been read to the end. As aiohttp by
// default: redirects followed, gzip / deflate bodies decoded, cookies kept in a jar,
// certificates verified against the system's CAs; plus query params, chunked transfer
// encoding both ways, connect and total timeouts. A malformed response is BadMessage saying
// what was wrong and who sent it. Loop thread only: a session and its responses belong to
// the loop that made them.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <weft/cookie_jar.hpp>
#include <weft/http.hpp>
#include <weft/loop.hpp>
#include <weft/ssl.hpp>

namespace weft::http {

namespace detail {
class ConnectionPool;
struct PooledConnection;
struct Hop;
}  // namespace detail

// aiohttp.ClientTimeout. Unset: no limit.
struct ClientTimeout {
    // The whole request: waiting for a connection, connecting, sending, and reading the
    // response head and body. TimeoutError when it passes.
    std::optional<Duration> total = std::chrono::minutes(5);
    // Waiting for a free connection from the pool plus connecting.
    std::optional<Duration> connect;
};

// aiohttp's ssl=: true verifies the server's certificate and host name against the
// system's CAs (a weft::ssl::Context::client(), made once per session); false encrypts
// without verifying anything (Context::unverified_client(): anyone in the middle can read
// along); a Context is used as it is (e.g. client() plus load_verify_locations of your CA).
using SslOption = std::variant<bool, ssl::Context>;

struct ClientSessionOptions {
    size_t limit = 100;          // connections in total, busy and idle (0: no limit)
    size_t limit_per_host = 0;   // connections per host:port (0: no limit)
    ClientTimeout timeout{};
    // Sent with every request (a request's own fields of the same name win). Content-Length
    // and Transfer-Encoding come from each request's body and Host from its URL: those
    // are dropped from here.
    Headers headers{};
    // A pooled connection idle for longer is closed instead of reused.
    Duration keepalive_timeout = std::chrono::seconds(15);
    size_t max_header_size = 64 * 1024;  // a response head's raw bytes; over it: BadMessage
    size_t max_headers = 256;
    SslOption ssl = true;  // for https:// URLs (a request's own ssl wins)
    // aiohttp's auto_decompress: a gzip or deflate body (Content-Encoding) comes out of
    // read / read_chunk decoded. Accept-Encoding: gzip, deflate is sent either way unless a
    // request or the session sets its own.
    bool auto_decompress = true;
    // The most a decoded body may hold: past it reading throws ContentEncodingError, so a
    // tiny compressed body that inflates to gigabytes (a zip bomb) cannot exhaust memory.
    // 64 MiB: far above a web page, far below trouble. Bodies sent unencoded are not limited.
    size_t max_decompressed_size = 64 * 1024 * 1024;
    // Cookies set by responses and sent back with later requests (aiohttp's cookie_jar=);
    // CookieJar({.unsafe = true}) also keeps those of hosts named by an IP address.
    CookieJar cookie_jar{};
};

struct RequestOptions {
    Headers headers{};   // Content-Length and Transfer-Encoding come from the body, not from here
    std::string body{};  // sent with Content-Length
    // When set, the body is sent chunked instead: called until it returns "".
    std::function<std::string()> chunked_body{};
    // aiohttp's params=: appended, percent-encoded (encode_query), to the URL's query.
    // Not carried to the URL of a redirect, which comes whole from the server.
    Params params{};
    // Follow 301/302/303/307/308, as aiohttp does: a 303 (and a 301 or 302 answering a
    // POST) becomes a GET without a body; Authorization and a Cookie header of your own
    // are dropped when the redirect leaves the origin (the jar's cookies follow their own
    // rules). max_redirects responses in a row are TooManyRedirects (aiohttp counts the
    // same way: the 10th redirect is the error). 1 or less: the first one is. (aiohttp's 0
    // means no limit; weft has none such: a redirect loop would run to the total timeout.)
    bool allow_redirects = true;
    int max_redirects = 10;
    // A redirect from https:// to http:// would send the rest of the exchange in clear:
    // refused (HttpError) unless allowed here.
    bool allow_https_downgrade = false;
    std::optional<SslOption> ssl{};            // instead of the session's
    std::optional<bool> auto_decompress{};     // instead of the session's
    std::optional<ClientTimeout> timeout{};    // instead of the session's
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

    // The next piece of the body as it arrives (decoded when auto_decompress: then at most
    // 64 KiB of decoded bytes per call); empty at its end (the connection then returns to
    // the pool). Bounded memory however long the body is. A gzip / deflate body that is
    // corrupt, cut short or decodes past max_decompressed_size is ContentEncodingError.
    std::string read_chunk();
    std::string read();  // the whole (rest of the) body
    // aiohttp's text() and read(): the body in a std::string like every body in weft,
    // its Content-Encoding undone (unless auto_decompress is off), no charset decoding.
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
    // ServerDisconnected (closed with no response), TooManyRedirects, HttpError (a refused
    // https -> http redirect), ssl::CertificateError (the server's certificate refused)
    // and ssl::SslError (any other TLS failure).
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
    // aiohttp's session.cookie_jar: what responses set, sent back with matching requests.
    CookieJar& cookie_jar() noexcept { return options_.cookie_jar; }

private:
    ClientResponse send_once(const std::string& method, const detail::Hop& hop, const RequestOptions& options,
                             const ClientTimeout& timeout, std::optional<TimePoint> deadline);
    const ssl::Context& ssl_context(const SslOption& option);

    ClientSessionOptions options_;
    std::shared_ptr<detail::ConnectionPool> pool_;
    // ssl = true / false, made the first time an https:// URL needs them.
    std::optional<ssl::Context> verified_, unverified_;
};

}  // namespace weft::http
