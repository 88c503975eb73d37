// An outside program: it sees weft only through the installed headers and weft.pc. It
// uses both layers, so the link line must carry Boost.Context and mimalloc too, and makes
// a TLS context, so it must carry OpenSSL's -lssl -lcrypto (libweft.a's TLS code needs them).
#include <weft/ssl.hpp>
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

int main() {
    weft::Loop loop;
    int callbacks = 0, timers = 0, cross = 0;
    for (int i = 0; i < 3; ++i) loop.call_soon([&] { ++callbacks; });
    loop.call_later(std::chrono::milliseconds(1), [&] { ++timers; });
    weft::LoopHandle handle = loop.handle();
    std::thread other([&] {
        handle.call_soon_threadsafe([&] {
            ++cross;
            loop.call_later(std::chrono::milliseconds(2), [&] { loop.stop(); });
        });
    });
    loop.run_forever();
    other.join();

    int fibers = weft::run([] {
        auto a = weft::spawn([] {
            weft::sleep(std::chrono::milliseconds(1));
            return 1;
        });
        auto [x, y] = weft::gather(a, [] { return 1; });
        return x + y;
    });
    // ssl.create_default_context(): OpenSSL's context and the system's CA store.
    auto tls = weft::ssl::Context::client();
    int tls_clients = !tls.is_server() && tls.native_handle() != nullptr ? 1 : 0;
    std::printf("consumer ok: %d callbacks, %d timer, %d cross-thread, %d fibers, %d TLS client\n",
                callbacks, timers, cross, fibers, tls_clients);
    return callbacks == 3 && timers == 1 && cross == 1 && fibers == 2 && tls_clients == 1 ? 0 : 1;
}
