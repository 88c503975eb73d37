// A hello-world HTTP server with a JSON-ish endpoint, on one loop or on one loop per core
// (ServerGroup, SO_REUSEPORT). SIGINT / SIGTERM shut it down gracefully. With --cert and
// --key (PEM files) it serves https.
//
//     http_server [port] [--loops N] [--cert PEM --key PEM]     (port 0 or none: a free one)
//
//     GET  /        Hello, World!
//     GET  /json    {"message": "Hello, World!", "requests": <served so far>}
//     POST /echo    the request body
#include <weft/weft.hpp>
#include "args.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

namespace http = weft::http;

namespace {

std::atomic<uint64_t> served{0};  // handlers of every loop count here

http::Application make_app() {
    http::Application app;
    app.add_get("/", [](http::Request&) {
        served.fetch_add(1, std::memory_order_relaxed);
        return http::Response::text("Hello, World!\n");
    });
    app.add_get("/json", [](http::Request&) {
        uint64_t n = served.fetch_add(1, std::memory_order_relaxed) + 1;
        return http::Response::json(R"({"message": "Hello, World!", "requests": )" + std::to_string(n) + "}\n");
    });
    app.add_post("/echo", [](http::Request& r) {
        served.fetch_add(1, std::memory_order_relaxed);
        return http::Response::text(r.read(), 200, r.headers().get("Content-Type", "application/octet-stream"));
    });
    return app;
}

void announce(uint16_t port, size_t loops, bool https) {
    std::printf("listening on 127.0.0.1:%u (%zu loop%s%s)\n", port, loops, loops == 1 ? "" : "s",
                https ? ", https" : "");
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    constexpr const char* kUsage = "http_server [--loops N] [--cert PEM --key PEM] [port]";
    uint16_t port = 0;
    size_t loops = 1;
    std::string cert, key;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--loops") == 0 && i + 1 < argc)
            loops = examples::number_arg(argv[++i], 1024, kUsage);
        else if (std::strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (std::strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else
            port = uint16_t(examples::number_arg(argv[i], 65535, kUsage));
    }
    if (cert.empty() != key.empty()) {
        std::fprintf(stderr, "--cert and --key go together\nusage: %s\n", kUsage);
        return 2;
    }
    try {
        // https: the handshake runs in each connection's task, before its first request.
        weft::ServerOptions tcp;
        if (!cert.empty()) {
            auto ctx = weft::ssl::Context::server();
            ctx.load_cert_chain(cert, key);
            tcp.ssl = ctx;
        }
        bool https = tcp.ssl.has_value();
        if (loops <= 1) {
            weft::run([&] {
                http::HttpServerOptions options;
                options.tcp = tcp;
                auto server = http::start_http_server(make_app(), "127.0.0.1", port, options);
                auto& loop = weft::Loop::current();
                weft::Event stop;
                loop.add_signal_handler(SIGINT, [&] { stop.set(); });
                loop.add_signal_handler(SIGTERM, [&] { stop.set(); });
                announce(server->port(), 1, https);
                stop.wait();
                server->shutdown(std::chrono::seconds(5));
            });
        } else {
            // Loop threads inherit this mask, so the signals wait here for sigwait.
            sigset_t signals;
            sigemptyset(&signals);
            sigaddset(&signals, SIGINT);
            sigaddset(&signals, SIGTERM);
            pthread_sigmask(SIG_BLOCK, &signals, nullptr);
            http::Application app = make_app();
            weft::ServerGroup group(loops, [&app](weft::Stream& s) { http::serve_connection(s, app); },
                                    "127.0.0.1", port, tcp);  // SO_REUSEPORT: set by ServerGroup
            announce(group.port(), group.size(), https);
            int signo = 0;
            sigwait(&signals, &signo);
            group.close();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_server: %s\n", e.what());
        return 1;
    }
    std::printf("shut down after %llu requests\n", (unsigned long long)served.load());
}
