// ConnectionPool: idle connections are checked before reuse (expired, or closed or written
// to by the server while idle) because a server may drop a kept-alive connection at any
// time; the request path also retries once when a reused connection turns out dead.
#include "net/detail/http_pool.hpp"

#include <cstdio>

#include <weft/tcp.hpp>

namespace weft::http::detail {

ConnectionPool::~ConnectionPool() { close(); }

bool ConnectionPool::room_for(const std::string& key) const {
    if (limit_ && open_ >= limit_) return false;
    if (per_host_limit_) {
        auto it = per_host_.find(key);
        if (it != per_host_.end() && it->second >= per_host_limit_) return false;
    }
    return true;
}

bool ConnectionPool::usable(PooledConnection& c) const {
    if (Clock::now() - c.idle_since > keepalive_) return false;
    if (c.reader.has_buffered_input()) return false;  // bytes nobody asked for
    // 0 and not at EOF: nothing yet, the only state fit for a request. At EOF (a close,
    // or over TLS a close_notify) the server closed it; bytes are something it sent
    // unasked. Over TLS what does not decrypt to data (a late session ticket) is no reason
    // to drop it; a record still arriving may be, and is caught by the retry.
    try {
        return c.stream.available() == 0 && !c.stream.at_eof();
    } catch (const Error&) {  // reset, or its TLS broke or ended without close_notify
        return false;
    }
}

void ConnectionPool::forget(const std::string& key) noexcept {
    --open_;
    auto it = per_host_.find(key);
    if (it != per_host_.end() && --it->second == 0) per_host_.erase(it);
}

void ConnectionPool::wake() noexcept {
    auto fired = std::exchange(freed_, std::make_shared<Event>());
    fired->set();
}

std::string ConnectionPool::key(const Url& url, const ssl::Context* context) {
    std::string k = url.scheme + "://" + url.host + ":" + std::to_string(url.port);
    if (url.is_https() && context) {
        char ctx[32];
        std::snprintf(ctx, sizeof ctx, "/%p", static_cast<void*>(context->native_handle()));
        k += ctx;
    }
    return k;
}

std::unique_ptr<PooledConnection> ConnectionPool::acquire(const Url& url, const ssl::Context* context) {
    if (url.is_https() && !context) throw InvalidStateError("an https:// connection needs a TLS context");
    std::string key = ConnectionPool::key(url, context);
    for (;;) {
        if (closed_) throw InvalidStateError("ClientSession is closed");
        // Most recently used first: the likeliest to be still alive.
        for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
            if ((*it)->key != key) continue;
            auto c = std::move(*it);
            idle_.erase(std::next(it).base());
            if (usable(*c)) {
                c->reused = true;
                return c;
            }
            forget(c->key);
            return acquire(url, context);  // the scan's iterators are gone; start over
        }
        // At the total limit with idle connections to other hosts: close the oldest.
        if (!room_for(key) && !idle_.empty() && limit_ && open_ >= limit_) {
            bool host_full = false;
            if (per_host_limit_) {
                auto it = per_host_.find(key);
                host_full = it != per_host_.end() && it->second >= per_host_limit_;
            }
            if (!host_full) {
                forget(idle_.front()->key);
                idle_.pop_front();
                continue;
            }
        }
        if (room_for(key)) {
            ++open_;
            ++per_host_[key];
            try {
                ConnectOptions connect;
                if (url.is_https()) {
                    connect.ssl = *context;
                    connect.server_hostname = url.host;  // SNI and the certificate's name
                }
                Stream s = open_connection(url.host, url.port, std::move(connect));
                auto c = std::make_unique<PooledConnection>(key, std::move(s), limits_);
                if (url.is_https()) c->context = *context;
                return c;
            } catch (...) {
                forget(key);
                wake();
                throw;
            }
        }
        auto freed = freed_;
        freed->wait();
    }
}

void ConnectionPool::release(std::unique_ptr<PooledConnection> c) noexcept {
    if (closed_) return discard(std::move(c));
    c->idle_since = Clock::now();
    idle_.push_back(std::move(c));
    wake();
}

void ConnectionPool::discard(std::unique_ptr<PooledConnection> c) noexcept {
    if (!c) return;
    forget(c->key);
    c.reset();  // ~Stream closes the socket (unless it was aborted already)
    wake();
}

void ConnectionPool::close() noexcept {
    closed_ = true;
    while (!idle_.empty()) {
        forget(idle_.front()->key);
        idle_.pop_front();
    }
    wake();
}

}  // namespace weft::http::detail
