// open_connection (non-blocking connect per address, with a deadline) and Server (an
// accept task per listening socket, a task per connection).
#include <weft/tcp.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/detail/platform.hpp"
#include <weft/combinators.hpp>
#include <weft/io_wait.hpp>
#include <weft/loop.hpp>
#include <weft/sleep.hpp>
#include <weft/sync.hpp>

namespace weft {

namespace {

// One connect attempt; returns the fd, or -1 with `err` set. Throws on timeout/cancel.
int try_connect(Loop& loop, const SocketAddress& addr, const TimePoint* deadline, int& err) {
    int fd = detail::open_socket(addr.family(), SOCK_STREAM, 0);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    if (::connect(fd, addr.get(), addr.size()) == 0) return fd;
    if (errno != EINPROGRESS) {
        err = errno;
        ::close(fd);
        return -1;
    }
    try {
        IoWaiter io(loop, fd);
        if (!io.wait(kWritable, deadline))
            throw TimeoutError("connect to " + addr.to_string() + ": timed out");  // closed below
        io.reset();
    } catch (...) {  // cancelled (or timed out): the half-open socket goes with us
        ::close(fd);
        throw;
    }
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0) return fd;
    ::close(fd);
    return -1;
}

// TLS over a connection just made (options.ssl), within what is left of the attempt's
// deadline as well as the handshake's own limit.
Stream with_tls(Stream stream, const ConnectOptions& options, const std::string& hostname,
                const TimePoint* deadline) {
    if (!options.ssl) return stream;
    TlsOptions tls{.server_side = false,
                   .server_hostname = options.server_hostname.empty() ? hostname : options.server_hostname,
                   .handshake_timeout = options.ssl_handshake_timeout};
    if (deadline) {
        Duration left = *deadline - Loop::current().time();
        tls.handshake_timeout = std::min(tls.handshake_timeout, std::max(left, Duration::zero()));
    }
    stream.start_tls(*options.ssl, std::move(tls));
    return stream;
}

}  // namespace

Stream open_connection(const SocketAddress& address, ConnectOptions options) {
    Loop& loop = Loop::current();
    std::optional<TimePoint> deadline;
    if (options.timeout) deadline = deadline_after(*options.timeout, loop.time());
    int err = 0;
    int fd = try_connect(loop, address, deadline ? &*deadline : nullptr, err);
    if (fd < 0) throw SystemError(err, "connect to " + address.to_string());
    return with_tls(Stream(loop, fd, options.stream), options, {}, deadline ? &*deadline : nullptr);
}

namespace {
// Tries each address in turn until one connects; `what` names the target in the error.
Stream connect_first(Loop& loop, const std::vector<SocketAddress>& addresses,
                     const TimePoint* deadline, const StreamOptions& stream,
                     const std::string& what) {
    int err = EINVAL;  // no address at all
    std::string tried;
    for (const SocketAddress& addr : addresses) {
        int fd = try_connect(loop, addr, deadline, err);
        if (fd >= 0) return Stream(loop, fd, stream);
        tried += (tried.empty() ? "" : ", ") + addr.to_string() + " (" + std::strerror(err) + ")";
    }
    throw SystemError(err,
                      "connect to " + what + " failed: " + (tried.empty() ? "no address" : tried));
}
}  // namespace

Stream open_connection(const std::string& host, uint16_t port, ConnectOptions options) {
    Loop& loop = Loop::current();
    std::optional<TimePoint> deadline;
    if (options.timeout) deadline = deadline_after(*options.timeout, loop.time());
    auto addresses = options.timeout
                         ? weft::timeout_at(*deadline, [&] { return resolve(host, port); })
                         : resolve(host, port);
    return with_tls(connect_first(loop, addresses, deadline ? &*deadline : nullptr, options.stream,
                                  host + ":" + std::to_string(port)),
                    options, host, deadline ? &*deadline : nullptr);
}

Stream open_connection(const std::vector<SocketAddress>& addresses, ConnectOptions options) {
    Loop& loop = Loop::current();
    std::optional<TimePoint> deadline;
    if (options.timeout) deadline = deadline_after(*options.timeout, loop.time());
    std::string what;
    for (const SocketAddress& a : addresses) what += (what.empty() ? "" : " / ") + a.to_string();
    return with_tls(connect_first(loop, addresses, deadline ? &*deadline : nullptr, options.stream,
                                  what.empty() ? "(no address)" : what),
                    options, {}, deadline ? &*deadline : nullptr);
}

// ---- Server ---------------------------------------------------------------------------

struct Server::State {
    Loop& loop;
    Handler handler;
    ServerOptions options;
    std::vector<int> listeners;
    std::vector<SocketAddress> addresses;
    std::vector<std::unique_ptr<IoWaiter>> waiters;
    std::vector<TaskRef> acceptors;
    std::vector<TaskRef> connections;  // finished ones are pruned as new ones arrive
    bool serving = true;
    Event closed;

    State(Loop& l, Handler h, ServerOptions o) : loop(l), handler(std::move(h)), options(o) {}
    ~State() {
        // If never started, or stopped by an error path. The registrations go first: an
        // IoWaiter unregistering after the close would name an fd number that may already
        // belong to someone else.
        waiters.clear();
        for (int fd : listeners) ::close(fd);
    }

    void accept_loop(size_t index) {
        int lfd = listeners[index];
        IoWaiter& io = *waiters[index];
        auto backoff = std::chrono::milliseconds(10);
        while (serving) {
            SocketAddress peer;
            socklen_t len = SocketAddress::capacity();
            int fd = detail::accept_socket(lfd, peer.get(), &len);
            if (fd >= 0) {
                backoff = std::chrono::milliseconds(10);
                peer.set_size(len);
                start_connection(fd, peer);
                continue;
            }
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                io.clear(kReadable);
                io.wait(kReadable);
            } else if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == ENETDOWN ||
                       err == ENOPROTOOPT || err == EHOSTDOWN || err == EHOSTUNREACH ||
                       err == EOPNOTSUPP || err == ENETUNREACH || err == EPERM) {
                continue;  // that connection's problem (accept(2) says: retry), not ours
            } else if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                // Out of descriptors: connections wait in the backlog until some close.
                // Sleeping instead of retrying keeps the loop from spinning meanwhile.
                loop.call_exception_handler({"accept: " + std::string(std::strerror(err)) +
                                                 "; retrying in " + std::to_string(backoff.count()) + " ms",
                                             nullptr, "Server on " + addresses[index].to_string()});
                weft::sleep(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
            } else {  // this listener is broken: say so and stop serving, rather than die silently
                loop.call_exception_handler(
                    {"accept failed; the server stops accepting",
                     std::make_exception_ptr(SystemError(err, "accept on " + addresses[index].to_string())),
                     "Server on " + addresses[index].to_string()});
                stop_accepting();
                return;
            }
        }
    }

    void start_connection(int fd, const SocketAddress& peer) {
        if (connections.size() >= 64) std::erase_if(connections, [](const TaskRef& t) { return t.done(); });
        std::shared_ptr<Stream> stream;
        try {
            stream = std::make_shared<Stream>(loop, fd, peer, options.stream);  // closes fd on failure
        } catch (...) {  // one connection failed to set up: report it, keep serving
            loop.call_exception_handler({"accept: could not set up a connection",
                                         std::current_exception(), "peer " + peer.to_string()});
            return;
        }
        Handler h = handler;
        Loop* l = &loop;
        std::optional<ssl::Context> tls = options.ssl;
        Duration handshake_timeout = options.ssl_handshake_timeout;
        connections.push_back(create_task(loop, [stream, h, l, tls, handshake_timeout]() mutable {
            if (tls) {
                try {
                    stream->start_tls(*tls, {.server_side = true, .handshake_timeout = handshake_timeout});
                } catch (const Cancelled&) {
                    throw;  // start_tls closed the stream
                } catch (...) {
                    // A client that could not or would not complete the handshake: asyncio
                    // logs it in debug mode only (a port scanner must not fill the log).
                    if (l->get_debug())
                        l->call_exception_handler({"TLS handshake failed", std::current_exception(),
                                                   "peer " + stream->peer_address().to_string()});
                    return;
                }
            }
            try {
                h(*stream);
            } catch (const Cancelled&) {
                // Server close, shutdown or loop close: what the handler wrote is still sent
                // (up to the linger time), then a FIN. Not abort(): a reset would destroy a
                // response the client has received but not yet read.
                stream->close();
                throw;
            } catch (...) {  // reported now, and the client sees the connection close
                stream->close();  // as asyncio: transport.close(), what was written goes out
                l->call_exception_handler({"Exception in connection handler", std::current_exception(),
                                           "peer " + stream->peer_address().to_string()});
                return;
            }
            stream->wait_closed();  // flush what the handler wrote, then close (≤ linger)
        }));
    }

    void stop_accepting() {
        if (!serving) return;
        serving = false;
        for (auto& t : acceptors) t.cancel("server closed");
        for (size_t i = 0; i < listeners.size(); ++i) {
            if (i < waiters.size()) waiters[i]->reset();
            ::close(listeners[i]);
        }
        listeners.clear();
        closed.set();
    }
};

Server::Server(std::shared_ptr<State> s) : s_(std::move(s)) {}

Server::~Server() {
    s_->stop_accepting();
    for (auto& c : s_->connections) c.cancel("server destroyed");
    TaskRef self = current_task();
    if (self) {  // wait for them, unless we are one of them
        DeferCancellation defer;
        for (auto& c : s_->connections)
            if (!(c == self)) c.base()->wait("Server::~Server", nullptr, false);
    }
    // The acceptor tasks hold the state (shared) until they have unwound.
}

const std::vector<SocketAddress>& Server::addresses() const noexcept { return s_->addresses; }
uint16_t Server::port() const noexcept { return s_->addresses.empty() ? 0 : s_->addresses[0].port(); }
bool Server::is_serving() const noexcept { return s_->serving; }

void Server::close() { s_->stop_accepting(); }

void Server::wait_closed() {
    s_->closed.wait();
    TaskRef self = current_task();
    for (auto& a : s_->acceptors) a.base()->wait("Server::wait_closed", nullptr, false);
    // Connections accepted before close: wait for them too (not for ourselves, if we are one).
    for (size_t i = 0; i < s_->connections.size(); ++i)
        if (!(s_->connections[i] == self)) s_->connections[i].base()->wait("Server::wait_closed", nullptr, false);
}

void Server::serve_forever() {
    try {
        s_->closed.wait();
    } catch (const Cancelled&) {
        close();
        throw;
    }
}

std::unique_ptr<Server> start_server(Server::Handler handler, const std::string& host, uint16_t port,
                                     ServerOptions options) {
    return start_server(std::move(handler), resolve(host, port), options);
}

std::unique_ptr<Server> start_unix_server(Server::Handler handler, const std::string& path,
                                          ServerOptions options) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // stale
    return start_server(std::move(handler), {SocketAddress::unix_path(path)}, options);
}

Stream open_unix_connection(const std::string& path, ConnectOptions options) {
    return open_connection(SocketAddress::unix_path(path), options);
}

std::pair<Stream, Stream> stream_pair(StreamOptions options) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) throw_errno("socketpair");
    for (int fd : fds) {
        try {
            detail::set_nonblocking_cloexec(fd);
        } catch (...) {
            ::close(fds[0]);
            ::close(fds[1]);
            throw;
        }
    }
    Loop& loop = Loop::current();
    Stream a(loop, fds[0], options);
    Stream b(loop, fds[1], options);
    return {std::move(a), std::move(b)};
}

std::unique_ptr<Server> start_server(Server::Handler handler, const std::vector<SocketAddress>& candidates,
                                     ServerOptions options) {
    Loop& loop = Loop::current();
    auto s = std::make_shared<Server::State>(loop, std::move(handler), options);
    uint16_t port = candidates.empty() ? 0 : candidates[0].port();
    std::string skipped;  // families this host lacks: fine unless every address is one
    for (SocketAddress addr : candidates) {
        if (port != 0 && addr.family() != AF_UNIX && addr.port() == 0) addr = SocketAddress::ip(addr.host(), port);
        int fd = detail::open_socket(addr.family(), SOCK_STREAM, 0);
        if (fd < 0 && errno == EAFNOSUPPORT && candidates.size() > 1) {  // e.g. no IPv6
            skipped += (skipped.empty() ? "" : ", ") + addr.to_string();
            continue;
        }
        if (fd < 0) throw_errno("socket for " + addr.to_string());  // ~State closes the others
        int on = 1;
        if (options.reuse_address && addr.family() != AF_UNIX)
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
#ifdef SO_REUSEPORT
        if (options.reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
#endif
        if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        if (::bind(fd, addr.get(), addr.size()) < 0 || ::listen(fd, options.backlog) < 0) {
            int err = errno;
            ::close(fd);
            throw SystemError(err, "bind/listen on " + addr.to_string());  // ~State closes the others
        }
        SocketAddress bound = addr;
        socklen_t len = SocketAddress::capacity();
        if (addr.family() != AF_UNIX && ::getsockname(fd, bound.get(), &len) == 0) bound.set_size(len);
        s->listeners.push_back(fd);
        s->addresses.push_back(bound);
        if (port == 0) port = bound.port();  // every address shares the port picked first
    }
    // A server that listens nowhere would wait in serve_forever for connections that
    // cannot come.
    if (s->listeners.empty())
        throw SystemError(candidates.empty() ? EINVAL : EAFNOSUPPORT,
                          candidates.empty()
                              ? "start_server: no address given"
                              : "start_server: no address family supported: " + skipped);
    for (size_t i = 0; i < s->listeners.size(); ++i)
        s->waiters.push_back(std::make_unique<IoWaiter>(loop, s->listeners[i]));
    // Each acceptor holds the state while it runs (the Server may go away meanwhile), but
    // only weakly before and after, since the state holds the acceptor tasks.
    std::weak_ptr<Server::State> weak = s;
    for (size_t i = 0; i < s->listeners.size(); ++i)
        s->acceptors.push_back(create_task(loop,
                                           [weak, i] {
                                               if (auto state = weak.lock()) state->accept_loop(i);
                                           },
                                           "accept " + s->addresses[i].to_string()));
    return std::unique_ptr<Server>(new Server(std::move(s)));
}

}  // namespace weft
