// weft's echo server for the process-level echo benchmarks (scripts/bench_run.py pins it
// to one core and drives it with bench/echo_client): read up to 64 KiB, write it back,
// drain. With --cert and --key the same handler serves TLS (ServerOptions.ssl, a
// Context::server() with that chain and key, weft's defaults otherwise), so the TLS rows
// differ from the plain ones by TLS alone. Usage: echo_server [--cert FILE --key FILE] PORT
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <weft/weft.hpp>

int main(int argc, char** argv) {
    std::string cert, key;
    int port = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--cert" && i + 1 < argc) cert = argv[++i];
        else if (a == "--key" && i + 1 < argc) key = argv[++i];
        else port = std::atoi(argv[i]);
    }
    weft::run([&] {
        weft::ServerOptions options;
        if (!cert.empty()) {
            auto ctx = weft::ssl::Context::server();
            ctx.load_cert_chain(cert, key);
            options.ssl = ctx;
        }
        auto server = weft::start_server(
            [](weft::Stream& s) {
                try {
                    for (;;) {
                        std::string chunk = s.read(64 * 1024);
                        if (chunk.empty()) return;
                        s.write(chunk);
                        s.drain();
                    }
                } catch (const weft::Error&) {
                    // A reset, or a TLS client that leaves without close_notify (s_time does,
                    // thousands of times a second): the connection is over either way, and the
                    // peers drop it silently too. Cancellation is no Error and still ends the task.
                }
            },
            "127.0.0.1", uint16_t(port), options);
        std::printf("listening %d\n", int(server->port()));
        std::fflush(stdout);
        server->serve_forever();
    });
}
