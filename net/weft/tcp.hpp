// TCP clients and servers for fibers (asyncio.open_connection / start_server).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <weft/address.hpp>
#include <weft/stream.hpp>
#include <weft/task.hpp>

namespace weft {

struct ConnectOptions {
    std::optional<Duration> timeout{};  // for the whole attempt, over every address (TLS included)
    StreamOptions stream{};  // {}: designated initializers may leave it out without a warning
    // TLS over the connection (asyncio's ssl=): the handshake runs before open_connection
    // returns. server_hostname: see TlsOptions (open_connection(host, port) defaults it to host).
    std::optional<ssl::Context> ssl{};
    std::string server_hostname{};
    Duration ssl_handshake_timeout = std::chrono::seconds(60);
};

// Connects to host:port, trying each resolved address in turn. Throws SystemError with
// the last errno (ECONNREFUSED, ...) and every address tried, or TimeoutError. Cancelling
// the calling fiber closes the half-open socket.
Stream open_connection(const std::string& host, uint16_t port, ConnectOptions options = {});
Stream open_connection(const SocketAddress& address, ConnectOptions options = {});
// The same over an address list of your own (e.g. resolved once, or with a fallback
// port), tried in order; the timeout covers the whole list.
Stream open_connection(const std::vector<SocketAddress>& addresses, ConnectOptions options = {});

struct ServerOptions {
    // Tokio's default. At 128 a burst of a few hundred connects overflowed the queue and
    // the kernel's SYN retry added a whole second (the kernel caps it at somaxconn).
    int backlog = 1024;
    bool reuse_address = true;  // SO_REUSEADDR
    bool reuse_port = false;    // SO_REUSEPORT: several listeners (loops) on one port
    StreamOptions stream{};
    // TLS on every accepted connection (a Context::server() with its certificate chain):
    // each connection's task runs the handshake before the handler. A connection whose
    // handshake fails or passes ssl_handshake_timeout is closed without reaching the
    // handler; the server goes on (asyncio logs these only in debug mode, and so does weft,
    // through the loop's exception handler).
    std::optional<ssl::Context> ssl{};
    Duration ssl_handshake_timeout = std::chrono::seconds(60);
};

// A listening server. Each accepted connection runs handler(stream) in a task of its own.
class Server {
public:
    using Handler = std::function<void(Stream&)>;

    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();  // close(); connections still running are cancelled and awaited if possible

    const std::vector<SocketAddress>& addresses() const noexcept;
    uint16_t port() const noexcept;  // of the first address (handy with port 0)
    bool is_serving() const noexcept;

    void close();         // stop accepting (listening sockets closed at once)
    void wait_closed();   // suspends until closed and every connection's handler is done
    void serve_forever(); // suspends until close() (or the caller is cancelled: then closes)

    struct State;

private:
    friend std::unique_ptr<Server> start_server(Handler, const std::vector<SocketAddress>&, ServerOptions);
    explicit Server(std::shared_ptr<State> s);
    std::shared_ptr<State> s_;
};

// Binds host:port (every resolved address; port 0 picks a free one), listens, and starts
// accepting in the background on the running loop. The accept loop survives EMFILE /
// ENFILE (it backs off and retries) and ignores ECONNABORTED.
std::unique_ptr<Server> start_server(Server::Handler handler, const std::string& host, uint16_t port,
                                     ServerOptions options = {});
// The same on explicit addresses (IPv4, IPv6 or Unix paths).
std::unique_ptr<Server> start_server(Server::Handler handler, const std::vector<SocketAddress>& addresses,
                                     ServerOptions options = {});

// Unix domain stream sockets (asyncio.start_unix_server / open_unix_connection). A stale
// socket file at `path` is removed first; the server does not remove it when it closes.
std::unique_ptr<Server> start_unix_server(Server::Handler handler, const std::string& path,
                                          ServerOptions options = {});
Stream open_unix_connection(const std::string& path, ConnectOptions options = {});

// Two connected streams (socketpair), e.g. to talk to a child process or between fibers.
std::pair<Stream, Stream> stream_pair(StreamOptions options = {});

}  // namespace weft
