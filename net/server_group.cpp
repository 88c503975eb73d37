// ServerGroup: start a server on each loop thread through run_coroutine_threadsafe; the
// first picks the port, the others join it with SO_REUSEPORT.
#include <weft/server_group.hpp>

#include <thread>

#include <weft/executor.hpp>

namespace weft {

ServerGroup::ServerGroup(size_t loops, Server::Handler handler, const std::string& host, uint16_t port,
                         ServerOptions options) {
    if (loops == 0) loops = std::max(1u, std::thread::hardware_concurrency());
    options.reuse_port = true;
    servers_.resize(loops);
    try {
        for (size_t i = 0; i < loops; ++i) {
            loops_.push_back(std::make_unique<LoopThread>());
            loops_.back()->start();
            uint16_t want = i == 0 ? port : port_;
            auto started = run_coroutine_threadsafe(*loops_.back(), [&, want] {
                return start_server(handler, host, want, options);
            });
            servers_[i] = std::move(started.result());
            if (i == 0) port_ = servers_[0]->port();
        }
    } catch (...) {
        close();
        throw;
    }
}

ServerGroup::~ServerGroup() { close(); }

void ServerGroup::close() {
    // First every loop stops accepting, so none keeps taking connections while the others
    // wind down; then each Server is destroyed on its own loop, which cancels and awaits its
    // connections (idle keep-alive clients cannot hold the group open).
    for (size_t i = 0; i < loops_.size(); ++i)
        if (servers_[i]) run_coroutine_threadsafe(*loops_[i], [this, i] { servers_[i]->close(); }).result();
    for (size_t i = 0; i < loops_.size(); ++i)
        if (servers_[i]) run_coroutine_threadsafe(*loops_[i], [this, i] { servers_[i].reset(); }).result();
    for (auto& l : loops_) {
        l->stop();
        l->join();
    }
    loops_.clear();
    servers_.clear();
}

}  // namespace weft
