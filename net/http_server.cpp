// The server's connection loop: read a request head, run its handler, discard what it
// left of the body, write the response, repeat while the connection stays alive. One
// request at a time per connection is what keeps pipelined responses in order. HttpServer
// wraps a weft::Server and tracks its connections so shutdown can tell idle ones (closed
// at once) from busy ones (left to finish).
#include <weft/http_server.hpp>

#include <cstdio>
#include <ctime>
#include <utility>

#include "net/detail/http_parser.hpp"
#include <weft/combinators.hpp>
#include <weft/task.hpp>

namespace weft::http {

namespace detail {

namespace {

// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", formatted at most once a second per thread.
std::string_view date_line() {
    thread_local time_t cached = 0;
    thread_local char line[64];
    thread_local size_t len = 0;
    time_t now = ::time(nullptr);
    if (now != cached) {
        tm t{};
        ::gmtime_r(&now, &t);
        len = ::strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &t);
        cached = now;
    }
    return {line, len};
}

bool bodyless_status(int status) { return (status >= 100 && status < 200) || status == 204 || status == 304; }

std::string seconds(Duration d) {
    char out[32];
    std::snprintf(out, sizeof out, "%g s", std::chrono::duration<double>(d).count());
    return out;
}

}  // namespace

// Who is connected, for graceful shutdown. Loop thread only.
struct Tracker {
    bool closing = false;
    size_t accepted = 0;
    std::vector<ConnectionState*> live;
};

struct ConnectionState {
    Stream& stream;
    const Application& app;
    const HttpServerOptions& options;
    Tracker* tracker;
    TaskRef task = current_task();
    bool between_requests = true;  // in read_head, before any request head has been parsed
    bool first_request = true;     // no request head read yet on this connection
    bool body_timed_out = false;   // the current request's body stalled: close after it
    bool check_idle = false;       // the cancel in flight is shutdown's (see awaiting_request)
    MessageReader reader;

    ConnectionState(Stream& s, const Application& a, const HttpServerOptions& o, Tracker* t)
        : stream(s),
          app(a),
          options(o),
          tracker(t),
          reader(s, MessageReader::Kind::request,
                 ParseLimits{o.max_header_size, o.max_headers, o.max_body_size},
                 s.peer_address().to_string()) {
        if (tracker) {
            tracker->live.push_back(this);
            ++tracker->accepted;
        }
    }
    ~ConnectionState() {
        if (tracker) std::erase(tracker->live, this);
    }

    bool closing() const { return tracker && tracker->closing; }

    // Waiting for the next request with nothing of it parsed or buffered: all that
    // shutdown() can see from outside. Whether the Stream or the socket holds its start
    // only this connection's fiber can tell (a Stream has one reader; it is waiting in
    // it), so shutdown cancels it with `check_idle` set, and it looks for itself (see
    // serve_requests).
    bool awaiting_request() const {
        return between_requests && !reader.started() && !reader.has_buffered_input();
    }

    // No byte of a request has arrived, neither parsed nor waiting in the Stream or the
    // socket: shutdown may close the connection without losing anything the client sent.
    // Once the first byte is in, the request is in flight and gets its answer. Over TLS
    // only what decrypts counts: a close_notify or a session ticket is no request, and a
    // record whose end has not arrived is not one yet (it is closed as if it had not
    // begun, as one arriving just after the close would be; the client's retry of an
    // idempotent request covers both). On this connection's fiber only.
    bool idle() {
        if (!awaiting_request()) return false;
        try {
            return stream.available() == 0;  // nothing sent, or the client has gone
        } catch (const Error&) {
            return true;  // reset, or its TLS broke or ended without close_notify: gone
        }
    }

    // The handler's own reason phrase unless it could break the status line (CR, LF or
    // NUL would let it inject headers): then the standard one.
    static std::string_view reason_for(const Response& r) {
        if (r.reason.empty() || r.reason.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
            return reason_phrase(r.status);
        return r.reason;
    }

    static constexpr long long kLengthByClose = -2;  // HTTP/1.0 streaming: the close ends it

    // Status line and headers, then `body` in the same write (one send for a whole small
    // response, not two); `length` -1 means chunked, kLengthByClose neither framing.
    void write_head(const Response& r, long long length, bool keep_alive, int version_minor,
                    std::string_view body = {}) {
        std::string out;
        out.reserve(256);
        out += "HTTP/1.1 ";
        out += std::to_string(r.status);
        out += ' ';
        out += reason_for(r);
        out += "\r\n";
        out += date_line();
        out += "Server: weft\r\n";
        for (const auto& [name, value] : r.headers) {
            if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
                iequals(name, "Connection"))
                continue;  // ours to decide
            out += name;
            out += ": ";
            out += value;
            out += "\r\n";
        }
        if (!bodyless_status(r.status) && length != kLengthByClose) {
            if (length < 0) {
                out += "Transfer-Encoding: chunked\r\n";
            } else {
                out += "Content-Length: ";
                out += std::to_string(length);
                out += "\r\n";
            }
        }
        if (!keep_alive)
            out += "Connection: close\r\n";
        else if (version_minor == 0)
            out += "Connection: keep-alive\r\n";
        out += "\r\n";
        if (body.empty())
            stream.write(out);
        else
            stream.writev({out, body});
    }

    // Sends the response; false if the connection must close after it.
    bool send(Response& r, bool head_only, bool keep_alive, int version_minor) {
        if (r.stream) {
            // HTTP/1.0 has no chunked encoding (RFC 9112 §6.1): raw bytes, then close.
            const bool chunked = version_minor >= 1;
            if (!chunked) keep_alive = false;
            write_head(r, chunked ? -1 : kLengthByClose, keep_alive, version_minor);
            if (head_only || bodyless_status(r.status)) {
                stream.drain();
                return keep_alive;
            }
            ResponseWriter writer(stream, chunked, options.io_timeout);
            r.stream(writer);
            if (chunked) stream.write("0\r\n\r\n");
        } else {
            const bool with_body = !head_only && !bodyless_status(r.status);
            write_head(r, (long long)r.body.size(), keep_alive, version_minor,
                       with_body ? std::string_view(r.body) : std::string_view());
        }
        stream.drain();
        return keep_alive;
    }

    // A request we will not serve: say why and close. The close lingers: closing with
    // unread input would send a reset, which can destroy our answer in the client's
    // receive queue before it reads it (a client still sending a large body, say).
    void reject(int status, const std::string& why) {
        Response r = Response::text(std::string(reason_phrase(status)) + ": " + why + "\n", status);
        try {
            weft::timeout(options.io_timeout, [&] { send(r, false, false, 1); });
            stream.write_eof();
            weft::timeout(std::chrono::seconds(2), [&] {
                size_t discarded = 0;
                for (std::string junk; discarded < 16 * 1024 * 1024 && !(junk = stream.read()).empty();)
                    discarded += junk.size();
            });
        } catch (const SystemError&) {  // the client has gone: nothing to tell it
        } catch (const ssl::SslError&) {  // or its TLS broke (ended without close_notify)
        } catch (const TimeoutError&) {
        }
    }

    void serve() {
        try {
            serve_requests();
        } catch (const SystemError&) {
            // Reset or broken pipe: the client left mid-exchange; nobody is left to tell,
            // and nothing still buffered for it is worth sending.
            stream.abort();
        } catch (const ssl::SslError&) {
            // Its TLS ended without close_notify (browsers leave kept-alive connections so)
            // or broke: the same, over TLS.
            stream.abort();
        }
    }

    void serve_requests() {
        for (;;) {
            between_requests = true;
            // Closing already (a connection accepted just before shutdown): a request it has
            // sent is still answered.
            if (closing() && idle()) return;
            bool got;
            try {
                got = read_head_in_time();
            } catch (const TimeoutError&) {
                return;  // idle too long, or a head trickling in: close quietly
            } catch (const BadMessage& e) {
                between_requests = false;
                return reject(e.status(), e.what());
            } catch (const Cancelled&) {
                // shutdown() asking whether a request has begun (and nobody else cancelled
                // meanwhile): if it has, it is served; if not, the connection ends here.
                if (!std::exchange(check_idle, false) || task.cancelling() != 1 || idle()) throw;
                task.uncancel();
                continue;
            }
            between_requests = false;
            if (!got) return;
            if (!serve_one()) return;
        }
    }

    // The next request head, under one deadline (Go's ReadHeaderTimeout beside its
    // IdleTimeout): keepalive_timeout until its first byte, then header_timeout for the
    // rest; a connection's first head gets header_timeout from the accept. One timer per
    // head, moved at most once — and not at all when the head comes in one read, as it
    // does on the keep-alive hot path.
    bool read_head_in_time() {
        const bool first = std::exchange(first_request, false);
        return weft::timeout(first ? options.header_timeout : options.keepalive_timeout, [&](Timeout& t) {
            return reader.read_head([&] {
                // Expired already (the read that woke us raced the timer): the cancel is
                // pending and lands at the next wait.
                if (!first && !t.expired()) t.reschedule(deadline_after(options.header_timeout));
            });
        });
    }

    // The next piece of the request body. Each wait for the client is bounded by
    // body_timeout, not the whole body: a slow client is let be, a stalled one is cut.
    // A piece already received costs no timer.
    std::string read_body() {
        if (reader.body_ready()) return reader.read_body();
        try {
            return weft::timeout(options.body_timeout, [&] { return reader.read_body(); });
        } catch (const TimeoutError&) {
            body_timed_out = true;
            throw TimeoutError("HTTP request body from " + stream.peer_address().to_string() + ": nothing for " +
                               seconds(options.body_timeout) + " (body_timeout)");
        }
    }

    // An interim answer (100 Continue), bounded like a response.
    void send_interim(std::string_view bytes) {
        stream.write(bytes);
        weft::timeout(options.io_timeout, [&] { stream.drain(); });
    }

    // What a handler's failure is answered with: 408 when it let the body timeout go (the
    // client stalled, not the code), else 500 with the exception reported to the loop.
    Response failure_response(const MessageHead& head, std::exception_ptr error) {
        if (body_timed_out) {
            try {
                std::rethrow_exception(error);
            } catch (const TimeoutError& e) {
                return Response::text(std::string("Request Timeout: ") + e.what() + "\n", 408);
            } catch (...) {
            }
        }
        Loop::current().call_exception_handler({"Exception in HTTP handler for " + head.method + " " + head.target,
                                                error, "peer " + stream.peer_address().to_string()});
        return Response::text("Internal Server Error\n", 500);
    }

    // A handler's status must be a final one: 1xx are interim answers, and a number
    // outside 100-599 is no status a client can read.
    static void check_final_status(const Response& r, const MessageHead& head) {
        if (r.status >= 200 && r.status <= 599) return;
        throw HttpError(std::errc::protocol_error, "HTTP handler for " + head.method + " " + head.target +
                                                       " returned status " + std::to_string(r.status) +
                                                       ": a final status is 200-599");
    }

    // One request; false when the connection must close after it.
    bool serve_one() {
        auto& head = reader.head();
        Request request(*this, stream.peer_address());
        bool head_only = head.method == "HEAD";
        int version_minor = head.version_minor;
        body_timed_out = false;
        Response response;
        try {
            response = app.handle(request);
            check_final_status(response, head);
        } catch (const BadMessage& e) {  // the handler read a body that broke the rules
            reject(e.status(), e.what());
            return false;
        } catch (const Cancelled&) {
            throw;
        } catch (...) {
            response = failure_response(head, std::current_exception());
        }
        // The rest of the body must go before the next request can be read. A client that
        // waits for 100 Continue will not send it, nor will one that has stalled, so such
        // a connection closes instead.
        bool keep_alive = head.keep_alive && !head.upgrade && !closing();
        if (!reader.message_done()) {
            if (request.expect_continue_ || body_timed_out) {
                keep_alive = false;
            } else {
                try {
                    weft::timeout(options.io_timeout, [&] {
                        while (!read_body().empty()) {
                        }
                    });
                } catch (const BadMessage& e) {
                    reject(e.status(), e.what());
                    return false;
                } catch (const TimeoutError&) {
                    return false;  // the client stalled mid-body: close
                }
            }
        }
        try {
            keep_alive = keep_alive && !closing();
            if (response.stream)  // the handler's producing time is not bounded, each write is
                keep_alive = send(response, head_only, keep_alive, version_minor);
            else
                keep_alive = weft::timeout(options.io_timeout, [&] {
                    return send(response, head_only, keep_alive, version_minor);
                });
        } catch (const TimeoutError&) {
            // The client stopped taking the response: drop the rest now rather than let the
            // close flush it for the linger time to a client we have given up on.
            stream.abort();
            return false;
        }
        return keep_alive && !closing();
    }
};

}  // namespace detail

// ---- Request / ResponseWriter / Response ----------------------------------------------

Request::Request(detail::ConnectionState& connection, const SocketAddress& peer)
    : connection_(&connection), reader_(&connection.reader), peer_(&peer) {
    const detail::MessageHead& head = reader_->head();
    const std::string& target = head.target;
    size_t q = target.find('?');
    path_ = target.substr(0, q);
    if (q != target.npos) query_ = target.substr(q + 1);
    auto expect = head.headers.get("Expect");
    expect_continue_ = expect && iequals(*expect, "100-continue") && head.version_minor >= 1;
}

const std::string& Request::method() const noexcept { return reader_->head().method; }
const std::string& Request::target() const noexcept { return reader_->head().target; }
const Headers& Request::headers() const noexcept { return reader_->head().headers; }
int Request::version_minor() const noexcept { return reader_->head().version_minor; }

void Request::send_continue() {
    if (!expect_continue_) return;
    expect_continue_ = false;
    connection_->send_interim("HTTP/1.1 100 Continue\r\n\r\n");
}

std::string Request::read_chunk() {
    if (!reader_->message_done()) send_continue();
    return connection_->read_body();  // what came with the head, even if the message is done
}

std::string Request::read() {
    std::string all;
    for (std::string piece; !(piece = read_chunk()).empty();) all += piece;
    return all;
}

void ResponseWriter::write(std::string_view chunk) {
    if (chunk.empty()) return;  // an empty chunk would end the body
    auto drain = [this] { weft::timeout(io_timeout_, [this] { stream_->drain(); }); };
    if (!chunked_) {
        stream_->write(chunk);
        return drain();
    }
    char size[24];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    stream_->writev({std::string_view(size, size_t(n)), chunk, "\r\n"});
    drain();
}

Response Response::text(std::string body, int status, std::string content_type) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    r.headers.add("Content-Type", std::move(content_type));
    return r;
}

Response Response::json(std::string body, int status) {
    return text(std::move(body), status, "application/json");
}

Response Response::streamed(std::function<void(ResponseWriter&)> writer, std::string content_type) {
    Response r;
    r.stream = std::move(writer);
    r.headers.add("Content-Type", std::move(content_type));
    return r;
}

// ---- serving ----------------------------------------------------------------------------

void serve_connection(Stream& stream, const Application& app, const HttpServerOptions& options) {
    detail::ConnectionState(stream, app, options, nullptr).serve();
}

struct HttpServer::State {
    Application app;
    HttpServerOptions options;
    detail::Tracker tracker;
    std::unique_ptr<Server> server;
};

HttpServer::HttpServer(std::shared_ptr<State> s) : s_(std::move(s)) {}

HttpServer::~HttpServer() {
    s_->tracker.closing = true;
    s_->server.reset();  // cancels and awaits the connections, which unregister themselves
}

uint16_t HttpServer::port() const noexcept { return s_->server->port(); }
const std::vector<SocketAddress>& HttpServer::addresses() const noexcept { return s_->server->addresses(); }
size_t HttpServer::connections_accepted() const noexcept { return s_->tracker.accepted; }
void HttpServer::close() { s_->server->close(); }
void HttpServer::wait_closed() { s_->server->wait_closed(); }
void HttpServer::serve_forever() { s_->server->serve_forever(); }

void HttpServer::shutdown(Duration grace) {
    s_->tracker.closing = true;
    s_->server->close();
    for (auto* c : s_->tracker.live) {
        if (!c->awaiting_request()) continue;
        c->check_idle = true;  // it looks at its Stream itself (see awaiting_request)
        c->task.cancel("HTTP server shutting down");
    }
    try {
        weft::timeout(grace, [&] { s_->server->wait_closed(); });
    } catch (const TimeoutError&) {
        for (auto* c : s_->tracker.live) c->task.cancel("HTTP server shutdown: grace period over");
        s_->server->wait_closed();
    }
}

namespace {

ServerOptions server_options(const HttpServerOptions& options) {
    ServerOptions tcp = options.tcp;
    if (options.ssl) tcp.ssl = options.ssl;
    return tcp;
}

}  // namespace

std::unique_ptr<HttpServer> start_http_server(Application app, const std::string& host, uint16_t port,
                                              HttpServerOptions options) {
    auto s = std::make_shared<HttpServer::State>();
    s->app = std::move(app);
    s->options = std::move(options);
    // Each connection's copy of the handler keeps the state alive, so a connection still
    // unwinding after ~HttpServer (outside a fiber it cannot wait) finds its tracker. The
    // cycle through s->server is broken by ~HttpServer dropping the server.
    s->server = start_server(
        [s](Stream& stream) { detail::ConnectionState(stream, s->app, s->options, &s->tracker).serve(); },
        host, port, server_options(s->options));
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(s)));
}

}  // namespace weft::http
