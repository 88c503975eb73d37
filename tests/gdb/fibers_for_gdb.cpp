// A program for tests/gdb/gdb_test.sh: named fibers suspended in known functions, then a
// stop in ready_for_gdb() where gdb looks at them (live, then in a core file it writes).
#include <weft/gdb_autoload.hpp>
#include <weft/weft.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

// noinline: each must be a frame of its own in the fibers' backtraces.
__attribute__((noinline)) void nap_in_known_place() {
    weft::sleep(1h);
    asm volatile("");  // keeps the call from being a tail call
}

__attribute__((noinline)) void queue_behind_the_lock(weft::Lock& lock) {
    lock.acquire();
    lock.release();
    asm volatile("");
}

__attribute__((noinline)) void read_the_pipe(int fd) {
    weft::IoWaiter waiter(weft::Loop::current(), fd);
    waiter.wait(weft::kReadable);
    asm volatile("");
}

extern "C" __attribute__((noinline)) void ready_for_gdb() { asm volatile("" ::: "memory"); }

int main() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return 1;
    weft::run([&] {
        weft::Lock lock;
        lock.acquire();
        auto napper = weft::spawn(weft::TaskOptions{"napper"}, [] { nap_in_known_place(); });
        auto locker = weft::spawn(weft::TaskOptions{"locker"}, [&] { queue_behind_the_lock(lock); });
        auto reader = weft::spawn(weft::TaskOptions{"reader"}, [&] { read_the_pipe(fds[0]); });
        weft::sleep(1ms);  // all three are now suspended where they wait
        auto fresh = weft::spawn(weft::TaskOptions{"fresh"}, [] {});
        ready_for_gdb();
        napper.cancel();
        lock.release();
        if (::write(fds[1], "x", 1) != 1) std::perror("write");
        weft::gather(locker, reader, fresh);
        try {
            napper.get();
        } catch (const weft::Cancelled&) {
        }
    });
    std::puts("fibers_for_gdb: done");
    return 0;
}
