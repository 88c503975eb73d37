// Signals on the loop: delivery on the loop thread, removal, and misuse errors.
#include <weft/error.hpp>
#include <weft/loop.hpp>

#include <csignal>
#include <thread>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Signals, HandlerRunsOnTheLoop) {
    weft::Loop loop;
    int got = 0;
    loop.add_signal_handler(SIGUSR1, [&] {
        ++got;
        loop.stop();
    });
    loop.call_soon([] { ::raise(SIGUSR1); });
    loop.call_later(5s, [&] { loop.stop(); });  // bound if the signal is lost
    loop.run_forever();
    EXPECT_EQ(got, 1);
    EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
    EXPECT_FALSE(loop.remove_signal_handler(SIGUSR1));
}

TEST(Signals, SignalFromAnotherThreadWakesTheLoop) {
    weft::Loop loop;
    int got = 0;
    loop.add_signal_handler(SIGUSR2, [&] {
        ++got;
        loop.stop();
    });
    std::thread sender([] {
        std::this_thread::sleep_for(20ms);
        ::kill(::getpid(), SIGUSR2);
    });
    // Bound if the signal is lost; generous, since a loaded CI machine can run the sender
    // thread late.
    loop.call_later(30s, [&] { loop.stop(); });
    loop.run_forever();
    sender.join();
    EXPECT_EQ(got, 1);
    loop.remove_signal_handler(SIGUSR2);
}

TEST(Signals, RemovedHandlerRestoresThePreviousDisposition) {
    static volatile sig_atomic_t previous_ran = 0;
    struct sigaction sa {}, old{};
    sa.sa_handler = [](int) { previous_ran = 1; };
    ::sigaction(SIGUSR1, &sa, &old);
    {
        weft::Loop loop;
        loop.add_signal_handler(SIGUSR1, [] {});
        loop.remove_signal_handler(SIGUSR1);
    }
    ::raise(SIGUSR1);
    EXPECT_EQ(previous_ran, 1);
    ::sigaction(SIGUSR1, &old, nullptr);
}

TEST(Signals, InvalidSignalsAreRejected) {
    weft::Loop loop;
    for (int bad : {0, -1, SIGKILL, SIGSTOP, 100000}) {
        try {
            loop.add_signal_handler(bad, [] {});
            FAIL() << "accepted signal " << bad;
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), EINVAL) << e.what();
        }
    }
}

TEST(Signals, OnlyOneLoopPerProcessOwnsASignal) {
    weft::Loop a, b;
    a.add_signal_handler(SIGUSR1, [] {});
    try {
        b.add_signal_handler(SIGUSR1, [] {});
        FAIL() << "two loops own SIGUSR1";
    } catch (const weft::SystemError& e) {
        EXPECT_EQ(e.errno_value(), EBUSY);
    }
    a.remove_signal_handler(SIGUSR1);
    b.add_signal_handler(SIGUSR1, [] {});  // free again
    b.remove_signal_handler(SIGUSR1);
}

TEST(Signals, SeveralSignalsInOneBatch) {
    weft::Loop loop;
    int usr1 = 0, usr2 = 0;
    loop.add_signal_handler(SIGUSR1, [&] { ++usr1; });
    loop.add_signal_handler(SIGUSR2, [&] { ++usr2; });
    loop.call_soon([] {
        ::raise(SIGUSR1);
        ::raise(SIGUSR2);
    });
    auto deadline = loop.time() + 5s;
    while ((usr1 == 0 || usr2 == 0) && loop.time() < deadline) {
        auto tick = loop.call_later(10ms, [] {});
        loop.run_once();
        tick.cancel();
    }
    EXPECT_EQ(usr1, 1);
    EXPECT_EQ(usr2, 1);
    loop.close();  // close removes the handlers
    weft::Loop other;
    other.add_signal_handler(SIGUSR1, [] {});
    other.remove_signal_handler(SIGUSR1);
}
