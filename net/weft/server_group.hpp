// One loop per core: N LoopThreads, each with its own listening socket on the same port
// (SO_REUSEPORT), so the kernel spreads connections over the loops. Each connection's
// handler runs on the loop that accepted it: state shared between handlers must be
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <weft/loop_thread.hpp>
#include <weft/tcp.hpp>

namespace weft {

class ServerGroup {
public:
    // Starts `loops` loop threads (0: one per hardware thread) serving host:port.
    ServerGroup(size_t loops, Server::Handler handler, const std::string& host, uint16_t port,
                ServerOptions options = {});
    ~ServerGroup();  // close()
    ServerGroup(const ServerGroup&) = delete;
    ServerGroup& operator=(const ServerGroup&) = delete;

    uint16_t port() const noexcept { return port_; }
    size_t size() const noexcept { return loops_.size(); }
    // Stops accepting on every loop, waits for the connections, stops and joins the loops.
    void close();

private:
    std::vector<std::unique_ptr<LoopThread>> loops_;
    std::vector<std::unique_ptr<Server>> servers_;  // servers_[i] lives on loops_[i]
    uint16_t port_ = 0;
};

}  // namespace weft
