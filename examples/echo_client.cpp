// An echo client: sends each argument as a line and prints what comes back.
//
//     echo_client port word...
#include <weft/weft.hpp>
#include "args.hpp"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: echo_client port word...\n");
        return 2;
    }
    uint16_t port = uint16_t(examples::number_arg(argv[1], 65535, "echo_client port word..."));
    try {
        weft::run([&] {
            weft::ConnectOptions options;
            options.timeout = std::chrono::seconds(5);
            auto stream = weft::open_connection("127.0.0.1", port, options);
            for (int i = 2; i < argc; ++i) {
                stream.write(std::string(argv[i]) + "\n");
                std::string reply = stream.read_line();
                std::printf("echo: %s", reply.c_str());
            }
            stream.write_eof();
            stream.read_all();
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}
