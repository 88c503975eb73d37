// An outside program: it sees weft only through the installed headers and weft.pc. It
// uses both layers, so the link line must carry Boost.Context and mimalloc too.
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
    std::printf("consumer ok: %d callbacks, %d timer, %d cross-thread, %d fibers\n", callbacks,
                timers, cross, fibers);
    return callbacks == 3 && timers == 1 && cross == 1 && fibers == 2 ? 0 : 1;
}
