// ClientSession and ClientResponse: one request = take a pooled connection, write the
// request, read the response head; the body is read later through the response, which
// hands the connection back when the body ends. Every step after the pool runs under the
// total deadline; any failure midway resets the connection (abort), since its state is unknown.
// request() is the loop over redirects; send_once() one hop of it.
#include <weft/http_client.hpp>

#include <cstdio>

#include "net/detail/content_decoder.hpp"
#include "net/detail/http_pool.hpp"
#include <weft/combinators.hpp>

namespace weft::http {

namespace detail {

// What one hop of a request sends, besides the method and the caller's options.
struct Hop {
    const Url& url;
    const ssl::Context* context;  // https only
    bool decompress;
    // The redirects have left the first URL's origin: Authorization and the caller's own
    // Cookie header stay behind (the jar's cookies go where their domain allows).
    bool left_origin;
    std::string jar_cookies;  // the Cookie header value the jar gives url
};

}  // namespace detail

using detail::Hop;

namespace {

constexpr int kMaxInterimResponses = 5;  // Go's limit on 1xx answers to one request
constexpr size_t kMaxDecodedPiece = 64 * 1024;  // what read_chunk decodes at most per call

bool is_redirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool idempotent(const std::string& method) {
    return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
           method == "OPTIONS" || method == "TRACE";
}

// Runs fn under the deadline if there is one; a timeout says what timed out.
template <class F>
decltype(auto) within(std::optional<TimePoint> deadline, const std::string& what, F&& fn) {
    if (!deadline) return fn();
    try {
        return weft::timeout_at(*deadline, std::forward<F>(fn));
    } catch (const TimeoutError&) {
        throw TimeoutError(what + ": total timeout exceeded");
    }
}

std::string serialize_head(const std::string& method, const Hop& hop, const Headers& session,
                           const RequestOptions& options) {
    const Url& url = hop.url;
    std::string out = method + " " + url.target + " HTTP/1.1\r\n";
    const Headers& mine = options.headers;
    auto field = [&](std::string_view name, std::string_view value) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    };
    // The body's framing is decided below from the body itself: a Content-Length or
    // Transfer-Encoding from either list would contradict it (a request smuggling hazard).
    auto framing = [](std::string_view n) {
        return iequals(n, "Content-Length") || iequals(n, "Transfer-Encoding");
    };
    // Cookie is written once below: the caller's (or the session's) joined with the jar's.
    auto skipped = [&](std::string_view n) {
        return framing(n) || iequals(n, "Cookie") || (hop.left_origin && iequals(n, "Authorization"));
    };
    if (!mine.contains("Host")) field("Host", url.authority());
    for (const auto& [n, v] : session)
        if (!mine.contains(n) && !iequals(n, "Host") && !skipped(n)) field(n, v);
    for (const auto& [n, v] : mine)
        if (!skipped(n)) field(n, v);
    if (!mine.contains("User-Agent") && !session.contains("User-Agent")) field("User-Agent", "weft/0.1");
    if (!mine.contains("Accept") && !session.contains("Accept")) field("Accept", "*/*");
    // As aiohttp: offered whatever auto_decompress says (with it off, the body comes raw).
    if (!mine.contains("Accept-Encoding") && !session.contains("Accept-Encoding"))
        field("Accept-Encoding", "gzip, deflate");
    std::string cookie;
    if (!hop.left_origin) {
        auto own = mine.get_all("Cookie");
        if (own.empty()) own = session.get_all("Cookie");
        for (std::string_view v : own) cookie += cookie.empty() ? std::string(v) : "; " + std::string(v);
    }
    if (!hop.jar_cookies.empty()) cookie += cookie.empty() ? hop.jar_cookies : "; " + hop.jar_cookies;
    if (!cookie.empty()) field("Cookie", cookie);
    if (options.chunked_body)
        field("Transfer-Encoding", "chunked");
    else if (!options.body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
        field("Content-Length", std::to_string(options.body.size()));
    out += "\r\n";
    return out;
}

void send_request(Stream& s, const std::string& head, const RequestOptions& options) {
    if (options.chunked_body) {
        s.write(head);
        for (std::string chunk; !(chunk = options.chunked_body()).empty();) {
            char size[24];
            int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
            s.writev({std::string_view(size, size_t(n)), chunk, "\r\n"});
            s.drain();
        }
        s.write("0\r\n\r\n");
    } else {
        s.writev({head, options.body});
    }
    s.drain();
}

}  // namespace

// ---- ClientResponse ---------------------------------------------------------------------

struct ClientResponse::State {
    std::shared_ptr<detail::ConnectionPool> pool;
    std::unique_ptr<detail::PooledConnection> conn;  // null once the body has ended
    detail::MessageHead head;
    Url url;
    std::string method;
    std::optional<TimePoint> deadline;
    std::string early_body;  // a body that ended before the caller asked for it
    // Undoes Content-Encoding; null for a body left as it came. Reset once finished.
    std::unique_ptr<detail::ContentDecoder> decoder;

    std::string what() const { return method + " " + url.to_string(); }
    // The next piece of the body as it came off the wire; empty at its end.
    std::string read_raw_chunk();

    ~State() { drop(); }
    // The exchange broke off (an error, a timeout, a body nobody will read): the
    // connection's state is unknown, so it is reset, and what is left of the request
    // (a body the server stopped taking, say) is not sent on in the background.
    void drop() noexcept {
        if (!conn) return;
        conn->stream.abort();
        pool->discard(std::move(conn));
    }
    // The body ended: the connection may serve another request, or it is closed.
    void finish() noexcept {
        if (!conn) return;
        if (head.keep_alive && !head.upgrade)
            pool->release(std::move(conn));
        else
            pool->discard(std::move(conn));
    }
};

ClientResponse::ClientResponse(std::unique_ptr<State> s) : s_(std::move(s)) {}
ClientResponse::ClientResponse(ClientResponse&&) noexcept = default;
ClientResponse& ClientResponse::operator=(ClientResponse&&) noexcept = default;
ClientResponse::~ClientResponse() = default;

int ClientResponse::status() const noexcept { return s_->head.status; }
const std::string& ClientResponse::reason() const noexcept { return s_->head.reason; }
const Headers& ClientResponse::headers() const noexcept { return s_->head.headers; }
int ClientResponse::version_minor() const noexcept { return s_->head.version_minor; }
const Url& ClientResponse::url() const noexcept { return s_->url; }

void ClientResponse::raise_for_status() const {
    if (status() >= 400)
        throw ClientResponseError(status(), s_->method + " " + s_->url.to_string() + ": " +
                                                std::to_string(status()) + " " + reason());
}

std::string ClientResponse::State::read_raw_chunk() {
    if (!early_body.empty()) return std::exchange(early_body, {});
    if (!conn) return {};
    try {
        std::string piece = within(deadline, what(), [&] { return conn->reader.read_body(); });
        if (conn->reader.message_done()) finish();
        return piece;
    } catch (...) {
        drop();
        throw;
    }
}

std::string ClientResponse::read_chunk() {
    State& s = *s_;
    if (!s.decoder) return s.read_raw_chunk();
    try {
        for (;;) {
            // What was fed may hold more than one piece's worth: decode before reading on.
            std::string out = s.decoder->decode(kMaxDecodedPiece);
            if (!out.empty()) return out;
            std::string raw = s.read_raw_chunk();
            if (raw.empty()) {  // the body ended
                s.decoder->finish();
                s.decoder.reset();
                return {};
            }
            s.decoder->feed(std::move(raw));
        }
    } catch (const ContentEncodingError&) {
        s.decoder.reset();  // the rest of the body cannot be decoded either
        s.drop();
        throw;
    }
}

std::string ClientResponse::read() {
    std::string all;
    for (std::string piece; !(piece = read_chunk()).empty();) all += piece;
    return all;
}

void ClientResponse::close() noexcept { s_->drop(); }

// ---- ClientSession ----------------------------------------------------------------------

ClientSession::ClientSession(ClientSessionOptions options)
    : options_(std::move(options)),
      pool_(std::make_shared<detail::ConnectionPool>(
          options_.limit, options_.limit_per_host, options_.keepalive_timeout,
          detail::ParseLimits{options_.max_header_size, options_.max_headers, SIZE_MAX})) {}

ClientSession::~ClientSession() { close(); }

void ClientSession::close() noexcept { pool_->close(); }
bool ClientSession::closed() const noexcept { return pool_->closed(); }
size_t ClientSession::connections_open() const noexcept { return pool_->open(); }
size_t ClientSession::connections_idle() const noexcept { return pool_->idle(); }

const ssl::Context& ClientSession::ssl_context(const SslOption& option) {
    if (const auto* given = std::get_if<ssl::Context>(&option)) return *given;
    // Made on first use, once: client() reads the system's CA store, not a thing to do
    // per request (nor for a session that never sees an https URL).
    if (std::get<bool>(option)) {
        if (!verified_) verified_ = ssl::Context::client();
        return *verified_;
    }
    if (!unverified_) unverified_ = ssl::Context::unverified_client();
    return *unverified_;
}

ClientResponse ClientSession::send_once(const std::string& method, const detail::Hop& hop, const RequestOptions& options,
                                        const ClientTimeout& timeout, std::optional<TimePoint> deadline) {
    const Url& url = hop.url;
    std::string what = method + " " + url.to_string();
    std::string head = serialize_head(method, hop, options_.headers, options);
    // A reused connection may have been closed by the server just as we picked it: one
    // retry on a fresh one, when nothing came back and the request may be sent twice.
    bool may_retry = idempotent(method) && !options.chunked_body;
    for (int attempt = 0;; ++attempt) {
        std::optional<TimePoint> connect_deadline = deadline;
        if (timeout.connect) {
            TimePoint c = deadline_after(*timeout.connect);
            if (!connect_deadline || c < *connect_deadline) connect_deadline = c;
        }
        std::unique_ptr<detail::PooledConnection> conn;
        if (connect_deadline) {
            try {
                conn = weft::timeout_at(*connect_deadline, [&] { return pool_->acquire(url, hop.context); });
            } catch (const TimeoutError&) {
                throw TimeoutError(what + ": connect timeout exceeded");
            }
        } else {
            conn = pool_->acquire(url, hop.context);
        }
        auto state = std::make_unique<ClientResponse::State>();
        state->pool = pool_;
        state->url = url;
        state->method = method;
        state->deadline = deadline;
        detail::PooledConnection& c = *conn;
        state->conn = std::move(conn);  // from here on, an exception closes it
        bool reused = c.reused;
        // The final response head: 1xx ones (100 Continue, 103 Early Hints) are interim,
        // the real one follows — after a few of them at most, as in Go, so a server
        // sending them forever cannot hold the request. False if the connection ended first.
        auto read_final_head = [&] {
            c.reader.set_no_body(method == "HEAD");
            for (int interim = 0;; ++interim) {
                if (!c.reader.read_head()) return false;
                int status = c.reader.head().status;
                if (status >= 200 || status == 101) return true;
                if (interim == kMaxInterimResponses)
                    throw BadMessage(502, what + ": more than " + std::to_string(kMaxInterimResponses) +
                                              " interim (1xx) responses from " +
                                              c.stream.peer_address().to_string());
            }
        };
        try {
            within(deadline, what, [&] {
                try {
                    send_request(c.stream, head, options);
                } catch (const SystemError&) {
                    // The server may have answered and closed early (a 413, say): read
                    // that answer if it is there; else the send error stands.
                    try {
                        if (read_final_head()) return;
                    } catch (const Cancelled&) {  // never swallowed, nor a timeout
                        throw;
                    } catch (const TimeoutError&) {
                        throw;
                    } catch (const Error&) {  // no answer there either: the send error stands
                    }
                    throw;
                }
                if (!read_final_head())
                    throw ServerDisconnected(what + ": " + c.stream.peer_address().to_string() +
                                             " closed the connection without a response");
            });
        } catch (const ServerDisconnected&) {
            if (reused && may_retry && attempt == 0) continue;  // state's destructor resets it
            throw;
        } catch (const SystemError&) {
            if (reused && may_retry && attempt == 0 && !c.reader.started()) continue;
            throw;
        }
        state->head = std::move(c.reader.head());
        options_.cookie_jar.update_cookies(state->head.headers, url);  // every hop's, redirects too
        int status = state->head.status;
        auto encoding = state->head.headers.get("Content-Encoding");
        if (hop.decompress && encoding && method != "HEAD" && status != 204 && status != 304)
            state->decoder = detail::ContentDecoder::for_encoding(*encoding, options_.max_decompressed_size, what);
        if (c.reader.message_done()) {  // the whole body came with the head (or there is none)
            state->early_body = c.reader.read_body();
            state->finish();
        }
        return ClientResponse(std::move(state));
    }
}

ClientResponse ClientSession::request(std::string_view method_in, std::string_view url_in, RequestOptions options) {
    if (pool_->closed()) throw InvalidStateError("ClientSession is closed");
    std::string method(method_in);
    for (char c : method)
        if (c <= ' ' || c >= 0x7f) throw HttpError(std::errc::invalid_argument, "invalid HTTP method '" + method + "'");
    Url url = with_params(parse_url(url_in), options.params);
    ClientTimeout timeout = options.timeout.value_or(options_.timeout);
    std::optional<TimePoint> deadline;
    if (timeout.total) deadline = deadline_after(*timeout.total);
    const SslOption ssl = options.ssl.value_or(options_.ssl);
    bool decompress = options.auto_decompress.value_or(options_.auto_decompress);
    std::string first_origin = url.origin();
    bool left_origin = false;

    for (int redirects = 0;; ++redirects) {
        Hop hop{url, url.is_https() ? &ssl_context(ssl) : nullptr, decompress, left_origin,
                options_.cookie_jar.cookie_header(url)};
        ClientResponse response = send_once(method, hop, options, timeout, deadline);
        auto location = response.headers().get("Location");
        if (!options.allow_redirects || !is_redirect(response.status()) || !location) return response;
        // As aiohttp: the max_redirects-th redirect in a row is the error.
        if (redirects + 1 >= options.max_redirects)
            throw TooManyRedirects(method + " " + std::string(url_in) + ": too many redirects (" +
                                   std::to_string(redirects + 1) + ", max_redirects " +
                                   std::to_string(options.max_redirects) + ")");
        int status = response.status();
        if (options.chunked_body && (status == 307 || status == 308))
            return response;  // a streamed body cannot be sent again
        Url next = resolve_url(url, *location);
        if (url.is_https() && !next.is_https() && !options.allow_https_downgrade)
            throw HttpError(std::errc::permission_denied,
                            method + " " + url.to_string() + ": redirect to " + next.to_string() +
                                " refused: it leaves https for clear text (RequestOptions::allow_https_downgrade)");
        // The body of a redirect is of no interest; a short one is read so the connection
        // can be reused, a long one is not worth waiting for. Read raw: a redirect's body
        // is not worth decoding (nor failing over).
        auto length = response.s_->head.content_length;
        if (length && *length <= 64 * 1024)
            while (!response.s_->read_raw_chunk().empty()) {
            }
        response.close();
        if (status == 303 || ((status == 301 || status == 302) && method == "POST")) {
            if (method != "HEAD") method = "GET";
            options.body.clear();
            options.chunked_body = nullptr;
            options.headers.remove("Content-Type");
        }
        if (next.origin() != first_origin) left_origin = true;  // credentials stay with their origin
        url = std::move(next);
    }
}

}  // namespace weft::http
