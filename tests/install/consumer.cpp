// An outside program: it sees weft only through the installed headers and weft.pc.
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
    std::printf("consumer ok: %d callbacks, %d timer, %d cross-thread\n", callbacks, timers, cross);
    return callbacks == 3 && timers == 1 && cross == 1 ? 0 : 1;
}
