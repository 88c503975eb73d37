// weft's echo server for the process-level echo benchmarks (scripts/bench_run.py pins it
// to one core and drives it with bench/echo_client): read up to 64 KiB, write it back,
// drain. Usage: echo_server PORT
#include <cstdio>
#include <cstdlib>
#include <string>

#include <weft/weft.hpp>

int main(int argc, char** argv) {
    const int port = argc > 1 ? std::atoi(argv[1]) : 0;
    weft::run([port] {
        auto server = weft::start_server(
            [](weft::Stream& s) {
                for (;;) {
                    std::string chunk = s.read(64 * 1024);
                    if (chunk.empty()) return;
                    s.write(chunk);
                    s.drain();
                }
            },
            "127.0.0.1", uint16_t(port));
        std::printf("listening %d\n", int(server->port()));
        std::fflush(stdout);
        server->serve_forever();
    });
}
