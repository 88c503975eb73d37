// An echo server: every line a client sends comes back. Straight-line fiber code — one
// handler per connection, suspending in read_line and drain.
//
//     echo_server [port] [--once]      (port 0 or none: pick a free one; --once: exit
//                                        after the first client disconnects)
#include <weft/weft.hpp>
#include "args.hpp"

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    uint16_t port = argc > 1 && argv[1][0] != '-'
                        ? uint16_t(examples::number_arg(argv[1], 65535, "echo_server [port] [--once]"))
                        : 0;
    bool once = argc > 1 && std::strcmp(argv[argc - 1], "--once") == 0;
    weft::run([&] {
        std::unique_ptr<weft::Server> server;
        server = weft::start_server(
            [&](weft::Stream& stream) {
                std::printf("client %s connected\n", stream.peer_address().to_string().c_str());
                for (std::string line; !(line = stream.read_line()).empty();) {
                    stream.write(line);
                    stream.drain();
                }
                std::printf("client %s left\n", stream.peer_address().to_string().c_str());
                std::fflush(stdout);
                if (once) server->close();
            },
            "127.0.0.1", port);
        std::printf("listening on %s\n", server->addresses()[0].to_string().c_str());
        std::fflush(stdout);
        server->serve_forever();
        server->wait_closed();
    });
}
