// UDP endpoints (asyncio.create_datagram_endpoint) in fiber style: send_to never drops a
// datagram because the socket buffer is full (it waits for room), recv_from suspends
// until one arrives. Errors are SystemError with errno and the addresses involved.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <weft/address.hpp>

namespace weft {

class DatagramEndpoint {
public:
    // Bound to `local` (port 0: a free one), optionally connected to `remote`.
    static DatagramEndpoint bind(const SocketAddress& local);
    static DatagramEndpoint connect(const SocketAddress& remote);

    DatagramEndpoint(DatagramEndpoint&&) noexcept;
    DatagramEndpoint& operator=(DatagramEndpoint&&) noexcept;
    ~DatagramEndpoint();

    void send_to(std::string_view datagram, const SocketAddress& to);
    void send(std::string_view datagram);  // connected endpoints
    // The next datagram and its sender. One larger than max_size is not cut short in
    // silence: it is consumed and SystemError(EMSGSIZE) says so (with its size on Linux);
    // the endpoint stays usable. 65536 holds any UDP datagram.
    std::pair<std::string, SocketAddress> recv_from(size_t max_size = 65536);
    void close();
    const SocketAddress& local_address() const noexcept;

    struct State;

private:
    explicit DatagramEndpoint(std::shared_ptr<State> s);
    std::shared_ptr<State> s_;  // shared: a waiting fiber keeps it alive (see Stream)
};

}  // namespace weft
