// Socket addresses (IPv4, IPv6, Unix paths) and name resolution. resolve() runs
// getaddrinfo on the loop's default worker pool, never on the loop; numeric hosts are
// parsed on the spot.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace weft {

class SocketAddress {
public:
    SocketAddress() = default;
    SocketAddress(const sockaddr* sa, socklen_t len);

    // Numeric only ("127.0.0.1", "::1"); std::system_error(EINVAL) otherwise.
    static SocketAddress ip(const std::string& host, uint16_t port);
    static SocketAddress unix_path(const std::string& path);

    int family() const noexcept { return storage_.ss_family; }
    uint16_t port() const noexcept;  // 0 for Unix paths
    std::string host() const;        // "127.0.0.1", "::1", or the Unix path
    std::string to_string() const;   // "127.0.0.1:80", "[::1]:80", "/tmp/sock"

    const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return len_; }
    void set_size(socklen_t len) noexcept { len_ = len; }
    static socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

private:
    sockaddr_storage storage_{};
    socklen_t len_ = 0;
};

// Every address of host:port for stream sockets (IPv4 and IPv6), in getaddrinfo's order.
// Must be called from a fiber unless host is numeric. Throws SystemError (EAI_* as
// text in what()) when the name does not resolve.
std::vector<SocketAddress> resolve(const std::string& host, uint16_t port);

}  // namespace weft
