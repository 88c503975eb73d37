// DatagramEndpoint: a UDP socket plus an IoWaiter; sends wait for room, receives for data.
#include <weft/udp.hpp>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "core/detail/platform.hpp"
#include <weft/error.hpp>
#include <weft/io_wait.hpp>
#include <weft/loop.hpp>

namespace weft {

struct DatagramEndpoint::State {
    int fd;
    SocketAddress local;
    SocketAddress remote;
    IoWaiter io;
    State(Loop& loop, int f) : fd(f), io(loop, f) {}
    ~State() {
        if (fd >= 0) {
            io.reset();
            ::close(fd);
        }
    }
    void check_open(const char* what) const {
        if (fd < 0) throw InvalidStateError(std::string(what) + ": the endpoint is closed");
    }
};

namespace {
std::unique_ptr<DatagramEndpoint::State> open_udp(int family) {
    int fd = detail::open_socket(family, SOCK_DGRAM, 0);
    if (fd < 0) throw_errno("socket(SOCK_DGRAM)");
    try {
        return std::make_unique<DatagramEndpoint::State>(Loop::current(), fd);
    } catch (...) {
        ::close(fd);
        throw;
    }
}

void read_local(DatagramEndpoint::State& s) {
    socklen_t len = SocketAddress::capacity();
    if (::getsockname(s.fd, s.local.get(), &len) == 0) s.local.set_size(len);
}
}  // namespace

DatagramEndpoint::DatagramEndpoint(std::shared_ptr<State> s) : s_(std::move(s)) {}
DatagramEndpoint::DatagramEndpoint(DatagramEndpoint&&) noexcept = default;
DatagramEndpoint& DatagramEndpoint::operator=(DatagramEndpoint&&) noexcept = default;
DatagramEndpoint::~DatagramEndpoint() = default;

DatagramEndpoint DatagramEndpoint::bind(const SocketAddress& local) {
    auto s = open_udp(local.family());
    if (::bind(s->fd, local.get(), local.size()) < 0) throw_errno("bind UDP to " + local.to_string());
    read_local(*s);
    return DatagramEndpoint(std::move(s));
}

DatagramEndpoint DatagramEndpoint::connect(const SocketAddress& remote) {
    auto s = open_udp(remote.family());
    if (::connect(s->fd, remote.get(), remote.size()) < 0)
        throw_errno("connect UDP to " + remote.to_string());
    s->remote = remote;
    read_local(*s);
    return DatagramEndpoint(std::move(s));
}

void DatagramEndpoint::send_to(std::string_view datagram, const SocketAddress& to) {
    s_->check_open("send_to");
    auto keep = s_;
    for (;;) {
        ssize_t n = to.size() ? ::sendto(s_->fd, datagram.data(), datagram.size(),
                                         detail::nosignal_send_flags(), to.get(), to.size())
                              : ::send(s_->fd, datagram.data(), datagram.size(), detail::nosignal_send_flags());
        if (n >= 0) return;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw_errno("send UDP to " + (to.size() ? to.to_string() : s_->remote.to_string()));
        s_->io.clear(kWritable);
        s_->io.wait(kWritable);
    }
}

void DatagramEndpoint::send(std::string_view datagram) { send_to(datagram, SocketAddress()); }

std::pair<std::string, SocketAddress> DatagramEndpoint::recv_from(size_t max_size) {
    s_->check_open("recv_from");
    auto keep = s_;
    std::string buf(max_size, '\0');
#ifdef __linux__
    const int flags = MSG_TRUNC;  // Linux: n is then the datagram's real size, for the message
#else
    const int flags = 0;
#endif
    for (;;) {
        SocketAddress from;
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_name = from.get();
        msg.msg_namelen = SocketAddress::capacity();
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        ssize_t n = ::recvmsg(s_->fd, &msg, flags);
        if (n >= 0) {
            from.set_size(msg.msg_namelen);
            if ((msg.msg_flags & MSG_TRUNC) || size_t(n) > max_size) {  // its tail is gone
                std::string size =
                    size_t(n) > max_size ? std::to_string(n) + " bytes" : "more bytes";
                throw SystemError(EMSGSIZE, "recv UDP on " + s_->local.to_string() +
                                                ": a datagram from " + from.to_string() + " of " +
                                                size + " did not fit in max_size " +
                                                std::to_string(max_size) + " and was dropped");
            }
            buf.resize(size_t(n));
            return {std::move(buf), from};
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw_errno("recv UDP on " + s_->local.to_string());
        s_->io.clear(kReadable);
        s_->io.wait(kReadable);
    }
}

void DatagramEndpoint::close() {
    if (s_->fd < 0) return;
    s_->io.reset();
    ::close(s_->fd);
    s_->fd = -1;
}

const SocketAddress& DatagramEndpoint::local_address() const noexcept { return s_->local; }

}  // namespace weft
