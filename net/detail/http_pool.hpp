// ConnectionPool: the client's kept-alive connections (aiohttp's TCPConnector). Counts
// every open connection — lent out or idle — against a total and a per-host limit; a
// request that finds no room waits for one to be released. Connections are told apart
// by scheme, host, port and, for https, the TLS context they were made with: a request is
// never sent over a connection its own settings would not have made (clear text for an
// https URL, or a TLS session verified less strictly than it asks). Loop thread only.
// Private to libweft.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "net/detail/http_parser.hpp"
#include <weft/http.hpp>
#include <weft/loop.hpp>
#include <weft/ssl.hpp>
#include <weft/stream.hpp>
#include <weft/sync.hpp>

namespace weft::http::detail {

struct PooledConnection {
    PooledConnection(std::string key, Stream s, ParseLimits limits)
        : key(std::move(key)),
          stream(std::move(s)),
          reader(stream, MessageReader::Kind::response, limits, stream.peer_address().to_string()) {}
    PooledConnection(const PooledConnection&) = delete;
    PooledConnection& operator=(const PooledConnection&) = delete;

    std::string key;  // see ConnectionPool::key
    std::optional<ssl::Context> context;  // an https connection's: kept alive with it
    Stream stream;
    MessageReader reader;  // reads `stream`: the two never move apart
    TimePoint idle_since{};
    bool reused = false;   // served a request before (may have been closed by the peer)
};

class ConnectionPool {
public:
    ConnectionPool(size_t limit, size_t limit_per_host, Duration keepalive, ParseLimits limits)
        : limit_(limit), per_host_limit_(limit_per_host), keepalive_(keepalive), limits_(limits) {}
    ~ConnectionPool();

    // "http://host:port", or "https://host:port/<SSL_CTX address>": what a connection may
    // be reused for. (A pooled TLS connection holds a reference to its SSL_CTX, so the
    // address cannot be reused by another context while the connection is in the pool.)
    static std::string key(const Url& url, const ssl::Context* context);
    // An idle connection for url's scheme, host and port (and `context`, which an https
    // URL needs), or a new one once the limits allow: over TLS, with the handshake done
    // and the certificate checked against url.host. The caller bounds the wait (and the
    // connect) with a timeout scope. InvalidStateError once closed; SystemError,
    // ssl::SslError, ssl::CertificateError from connecting.
    std::unique_ptr<PooledConnection> acquire(const Url& url, const ssl::Context* context);
    // Back to the idle list (or closed, if the pool is closed).
    void release(std::unique_ptr<PooledConnection> c) noexcept;
    // Closed (Stream::close): the server asked for it. A caller that does not know the
    // connection's state aborts its stream first.
    void discard(std::unique_ptr<PooledConnection> c) noexcept;

    void close() noexcept;
    bool closed() const noexcept { return closed_; }
    size_t open() const noexcept { return open_; }
    size_t idle() const noexcept { return idle_.size(); }

private:
    bool room_for(const std::string& key) const;
    bool usable(PooledConnection& c) const;
    void forget(const std::string& key) noexcept;  // one connection to key closed
    void wake() noexcept;

    size_t limit_, per_host_limit_;
    Duration keepalive_;
    ParseLimits limits_;
    size_t open_ = 0;                                  // lent out + idle
    std::unordered_map<std::string, size_t> per_host_;  // the same, per key
    std::deque<std::unique_ptr<PooledConnection>> idle_;  // least recently used first
    // Set (and replaced) whenever a connection is released or closed; waiters hold the
    // one they wait on, so a wake-up never finds it gone.
    std::shared_ptr<Event> freed_ = std::make_shared<Event>();
    bool closed_ = false;
};

}  // namespace weft::http::detail
