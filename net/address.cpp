// SocketAddress formatting and parsing; resolve() with getaddrinfo off the loop, on a pool
// of its own.
#include <weft/address.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include <weft/error.hpp>
#include <weft/executor.hpp>

namespace weft {

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) {
    if (len > sizeof storage_) len = sizeof storage_;
    std::memcpy(&storage_, sa, len);
    len_ = len;
}

SocketAddress SocketAddress::ip(const std::string& host, uint16_t port) {
    SocketAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len_ = sizeof(sockaddr_in);
        return a;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    std::string h = host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
    if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.len_ = sizeof(sockaddr_in6);
        return a;
    }
    throw Error(std::errc::invalid_argument,
                "SocketAddress::ip: not a numeric address: '" + host + "'");
}

SocketAddress SocketAddress::unix_path(const std::string& path) {
    SocketAddress a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
    if (path.size() >= sizeof un->sun_path)
        throw Error(std::errc::filename_too_long,
                    "SocketAddress::unix_path: path too long: '" + path + "'");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    a.len_ = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
}

uint16_t SocketAddress::port() const noexcept {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

std::string SocketAddress::host() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    else if (family() == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
    else if (family() == AF_UNIX)
        return reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path;
    return buf;
}

std::string SocketAddress::to_string() const {
    if (family() == AF_INET) return host() + ":" + std::to_string(port());
    if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
    if (family() == AF_UNIX) return host();
    if (size() == 0) return "(no address)";
    return "(address family " + std::to_string(family()) + ")";  // one we cannot print
}

namespace {
std::vector<SocketAddress> getaddrinfo_blocking(const std::string& host, uint16_t port, int flags) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags | AI_ADDRCONFIG;
    addrinfo* list = nullptr;
    int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (rc != 0)
        throw SystemError(rc == EAI_SYSTEM ? errno : EHOSTUNREACH,
                          "resolve(" + host + "): " + ::gai_strerror(rc));
    std::vector<SocketAddress> out;
    for (addrinfo* ai = list; ai; ai = ai->ai_next) out.emplace_back(ai->ai_addr, ai->ai_addrlen);
    ::freeaddrinfo(list);
    return out;
}
}  // namespace

std::vector<SocketAddress> resolve(const std::string& host, uint16_t port) {
    try {
        return {SocketAddress::ip(host, port)};
    } catch (const Error&) {  // not numeric: ask the resolver, off the loop
    }
    // On the loop's resolver pool, not the default one: jobs blocking there (to_thread,
    // run_in_executor) must not hold up name resolution.
    ThreadPool* resolver = &detail::resolver_executor(Loop::current());
    return run_in_executor(resolver, [host, port] {
        return getaddrinfo_blocking(host, port, 0);
    }).get();
}

}  // namespace weft
