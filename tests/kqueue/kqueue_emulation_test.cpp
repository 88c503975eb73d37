// The kqueue emulation's own claims (kqueue_emulation.cpp), each checked against what
// FreeBSD's kqueue(2) documents: EV_CLEAR edges, level filters, EV_EOF with data still
// pending, EV_RECEIPT and EV_ERROR per change, EVFILT_USER triggers across threads,
// EV_ONESHOT, EV_DISABLE / EV_ENABLE, EVFILT_SIGNAL counts, timeouts. Pipes and socketpairs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

using namespace std::chrono_literals;

namespace {

struct Kq {
    int fd = ::kqueue();
    ~Kq() { ::close(fd); }
    int change(short filter, uintptr_t ident, unsigned short flags, unsigned fflags = 0,
               void* udata = nullptr) {
        struct kevent ch;
        EV_SET(&ch, ident, filter, flags, fflags, 0, udata);
        return ::kevent(fd, &ch, 1, nullptr, 0, nullptr);
    }
    // Up to `max` events without waiting.
    int poll(struct kevent* out, int max, long wait_ms = 0) {
        timespec ts{wait_ms / 1000, (wait_ms % 1000) * 1000000};
        return ::kevent(fd, nullptr, 0, out, max, &ts);
    }
};

struct Pair {
    int fds[2];
    explicit Pair(bool pipe) {
        EXPECT_EQ(pipe ? ::pipe(fds) : ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        for (int fd : fds) ::fcntl(fd, F_SETFL, O_NONBLOCK);
    }
    ~Pair() { close_both(); }
    void close(int i) {
        if (fds[i] >= 0) ::close(fds[i]);
        fds[i] = -1;
    }
    void close_both() {
        close(0);
        close(1);
    }
    void put(int i, const char* s) { ASSERT_EQ(::write(fds[i], s, strlen(s)), ssize_t(strlen(s))); }
};

void* tag(uintptr_t n) {
    return reinterpret_cast<void*>(n);
}

TEST(KqueueEmulation, ClearReportsEachNewArrivalOnceNotTheBufferedData) {
    Kq kq;
    Pair p(true);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR, 0, tag(7)), 0);
    struct kevent ev[4];
    EXPECT_EQ(kq.poll(ev, 4), 0);
    p.put(1, "abc");
    ASSERT_EQ(kq.poll(ev, 4), 1);
    EXPECT_EQ(ev[0].ident, uintptr_t(p.fds[0]));
    EXPECT_EQ(ev[0].filter, EVFILT_READ);
    EXPECT_EQ(ev[0].data, 3);
    EXPECT_EQ(ev[0].udata, tag(7));
    EXPECT_EQ(kq.poll(ev, 4), 0) << "EV_CLEAR: nothing new, nothing reported";
    p.put(1, "de");
    ASSERT_EQ(kq.poll(ev, 4), 1);
    EXPECT_EQ(ev[0].data, 5) << "data is what is readable now";
}

TEST(KqueueEmulation, LevelFilterRepeatsUntilDrained) {
    Kq kq;
    Pair p(true);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD), 0);
    p.put(1, "x");
    struct kevent ev[2];
    EXPECT_EQ(kq.poll(ev, 2), 1);
    EXPECT_EQ(kq.poll(ev, 2), 1);
    char c;
    ASSERT_EQ(::read(p.fds[0], &c, 1), 1);
    EXPECT_EQ(kq.poll(ev, 2), 0);
}

TEST(KqueueEmulation, AddOnAnExistingKnoteReevaluatesAndReplacesUdata) {
    Kq kq;
    Pair p(true);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR, 0, tag(1)), 0);
    p.put(1, "x");
    struct kevent ev[2];
    ASSERT_EQ(kq.poll(ev, 2), 1);
    EXPECT_EQ(kq.poll(ev, 2), 0);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR, 0, tag(2)), 0);
    ASSERT_EQ(kq.poll(ev, 2), 1) << "still readable: EV_ADD reports it again";
    EXPECT_EQ(ev[0].udata, tag(2));
}

TEST(KqueueEmulation, EofWithDataStillPendingOnPipeAndSocket) {
    for (bool pipe : {true, false}) {
        Kq kq;
        Pair p(pipe);
        ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR), 0);
        p.put(1, "bye");
        p.close(1);
        struct kevent ev[2];
        ASSERT_EQ(kq.poll(ev, 2), 1) << (pipe ? "pipe" : "socket");
        EXPECT_TRUE(ev[0].flags & EV_EOF);
        EXPECT_EQ(ev[0].data, 3) << "EOF does not hide the bytes still to read";
        EXPECT_EQ(ev[0].fflags, 0u) << "no socket error";
    }
}

TEST(KqueueEmulation, WriteFilterReportsRoomAndEofWhenThePeerIsGone) {
    Kq kq;
    Pair p(false);
    ASSERT_EQ(kq.change(EVFILT_WRITE, p.fds[0], EV_ADD | EV_CLEAR), 0);
    struct kevent ev[2];
    ASSERT_EQ(kq.poll(ev, 2), 1);
    EXPECT_EQ(ev[0].filter, EVFILT_WRITE);
    EXPECT_GT(ev[0].data, 0);
    EXPECT_FALSE(ev[0].flags & EV_EOF);
    p.close(1);
    ASSERT_EQ(kq.poll(ev, 2), 1);
    EXPECT_TRUE(ev[0].flags & EV_EOF);
}

TEST(KqueueEmulation, ReceiptReturnsOneEntryPerChangeWithoutCollecting) {
    Kq kq;
    Pair p(true);
    p.put(1, "ready");  // a readable knote that must not be collected by this call
    struct kevent changes[3], results[3];
    EV_SET(&changes[0], p.fds[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, nullptr);
    EV_SET(&changes[1], 9999, EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, nullptr);
    EV_SET(&changes[2], p.fds[1], EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
    ASSERT_EQ(::kevent(kq.fd, changes, 3, results, 3, nullptr), 3);
    for (auto& r : results) EXPECT_EQ(r.flags, EV_ERROR);
    EXPECT_EQ(results[0].data, 0);
    EXPECT_EQ(results[1].data, EBADF);
    EXPECT_EQ(results[2].data, ENOENT);
    EXPECT_EQ(results[1].ident, 9999u);
    struct kevent ev[2];
    EXPECT_EQ(kq.poll(ev, 2), 1) << "the first change was applied";
}

TEST(KqueueEmulation, ErrorsWithoutReceipt) {
    Kq kq;
    Pair p(true);
    struct kevent changes[2], results[2];
    EV_SET(&changes[0], 9999, EVFILT_READ, EV_ADD, 0, 0, nullptr);
    EV_SET(&changes[1], p.fds[0], EVFILT_READ, EV_ADD, 0, 0, nullptr);
    // No room for the error: kevent fails with it and stops there.
    errno = 0;
    EXPECT_EQ(::kevent(kq.fd, changes, 2, nullptr, 0, nullptr), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_DELETE), -1);
    EXPECT_EQ(errno, ENOENT) << "the change after the failing one was not applied";
    // With room: an EV_ERROR entry for the failing change only, and no events collected.
    p.put(1, "x");
    ASSERT_EQ(::kevent(kq.fd, changes, 2, results, 2, nullptr), 1);
    EXPECT_EQ(results[0].flags, EV_ERROR);
    EXPECT_EQ(results[0].data, EBADF);
    EXPECT_EQ(kq.poll(results, 2), 1) << "the second change was applied";
    EXPECT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_DELETE), 0);
    EXPECT_EQ(kq.change(EVFILT_USER, 1, 0, NOTE_TRIGGER), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(::kevent(12345, nullptr, 0, nullptr, 0, nullptr), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(KqueueEmulation, UserTriggerFromAnotherThreadWakesAWaitingKevent) {
    Kq kq;
    ASSERT_EQ(kq.change(EVFILT_USER, 42, EV_ADD | EV_CLEAR, 0, tag(5)), 0);
    struct kevent ev[2];
    EXPECT_EQ(kq.poll(ev, 2), 0) << "not triggered yet";
    std::thread trigger([&] {
        std::this_thread::sleep_for(20ms);
        struct kevent t;
        EV_SET(&t, 42, EVFILT_USER, 0, NOTE_TRIGGER, 0, tag(6));
        ::kevent(kq.fd, &t, 1, nullptr, 0, nullptr);
    });
    auto start = std::chrono::steady_clock::now();
    int n = ::kevent(kq.fd, nullptr, 0, ev, 2, nullptr);  // blocks until the trigger
    trigger.join();
    ASSERT_EQ(n, 1);
    EXPECT_EQ(ev[0].filter, EVFILT_USER);
    EXPECT_EQ(ev[0].ident, 42u);
    EXPECT_EQ(ev[0].udata, tag(6)) << "any change to a knote replaces its udata";
    EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
    EXPECT_EQ(kq.poll(ev, 2), 0) << "EV_CLEAR resets the trigger";
    // Two triggers before a collection make one event.
    kq.change(EVFILT_USER, 42, 0, NOTE_TRIGGER);
    kq.change(EVFILT_USER, 42, 0, NOTE_TRIGGER);
    EXPECT_EQ(kq.poll(ev, 2), 1);
    EXPECT_EQ(kq.poll(ev, 2), 0);
}

TEST(KqueueEmulation, UserKnoteWithoutClearStaysTriggeredAndKeepsItsFflags) {
    Kq kq;
    ASSERT_EQ(kq.change(EVFILT_USER, 1, EV_ADD), 0);
    kq.change(EVFILT_USER, 1, 0, NOTE_TRIGGER | NOTE_FFCOPY | 0x5);
    kq.change(EVFILT_USER, 1, 0, NOTE_FFOR | 0x2);
    struct kevent ev[2];
    ASSERT_EQ(kq.poll(ev, 2), 1);
    EXPECT_EQ(ev[0].fflags, 0x7u);
    EXPECT_EQ(kq.poll(ev, 2), 1) << "a level knote stays triggered";
    kq.change(EVFILT_USER, 1, EV_CLEAR);  // EV_CLEAR in a change resets the trigger
    EXPECT_EQ(kq.poll(ev, 2), 0);
}

TEST(KqueueEmulation, OneshotIsDeletedAfterDelivery) {
    Kq kq;
    Pair p(true);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_ONESHOT), 0);
    p.put(1, "x");
    struct kevent ev[2];
    ASSERT_EQ(kq.poll(ev, 2), 1);
    EXPECT_TRUE(ev[0].flags & EV_ONESHOT);
    EXPECT_EQ(kq.poll(ev, 2), 0);
    EXPECT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_DELETE), -1);
    EXPECT_EQ(errno, ENOENT);
}

TEST(KqueueEmulation, DisabledKnoteKeepsItsActivationForEnable) {
    Kq kq;
    Pair p(true);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR | EV_DISABLE), 0);
    p.put(1, "x");
    struct kevent ev[2];
    EXPECT_EQ(kq.poll(ev, 2), 0) << "disabled";
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ENABLE), 0);
    ASSERT_EQ(kq.poll(ev, 2), 1) << "the edge seen while disabled is reported on enable";
    EXPECT_EQ(kq.poll(ev, 2), 0);
}

TEST(KqueueEmulation, EventsThatDoNotFitWaitForTheNextCall) {
    Kq kq;
    Pair a(true), b(true), c(true);
    for (Pair* p : {&a, &b, &c}) {
        ASSERT_EQ(kq.change(EVFILT_READ, p->fds[0], EV_ADD | EV_CLEAR), 0);
        p->put(1, "x");
    }
    struct kevent ev[3];
    ASSERT_EQ(kq.poll(ev, 2), 2);
    uintptr_t first = ev[0].ident, second = ev[1].ident;
    ASSERT_EQ(kq.poll(ev, 3), 1) << "the third edge was kept, not lost";
    EXPECT_NE(ev[0].ident, first);
    EXPECT_NE(ev[0].ident, second);
}

TEST(KqueueEmulation, DeleteAndClosedFds) {
    Kq kq;
    Pair p(true);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR), 0);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_DELETE), 0);
    p.put(1, "x");
    struct kevent ev[2];
    EXPECT_EQ(kq.poll(ev, 2), 0);
    ASSERT_EQ(kq.change(EVFILT_READ, p.fds[0], EV_ADD | EV_CLEAR), 0);
    int fd = p.fds[0];
    p.close(0);  // kqueue drops a closed fd's knotes
    EXPECT_EQ(kq.poll(ev, 2), 0);
    EXPECT_EQ(kq.change(EVFILT_READ, fd, EV_DELETE), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(kq.change(EVFILT_READ, fd, EV_ADD), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(KqueueEmulation, SignalKnoteCountsDeliveriesAndChainsToTheHandler) {
    static volatile sig_atomic_t handled = 0;
    struct sigaction sa {
    }, old{};
    sa.sa_handler = [](int) { handled = handled + 1; };
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    {
        Kq kq;
        ASSERT_EQ(kq.change(EVFILT_SIGNAL, SIGUSR1, EV_ADD), 0);
        struct kevent ev[2];
        EXPECT_EQ(kq.poll(ev, 2), 0);
        ::raise(SIGUSR1);
        ::raise(SIGUSR1);
        ASSERT_EQ(kq.poll(ev, 2), 1);
        EXPECT_EQ(ev[0].filter, EVFILT_SIGNAL);
        EXPECT_EQ(ev[0].ident, uintptr_t(SIGUSR1));
        EXPECT_EQ(ev[0].data, 2) << "deliveries since the last retrieval";
        EXPECT_TRUE(ev[0].flags & EV_CLEAR) << "set implicitly";
        EXPECT_EQ(handled, 2) << "the process's own handler still runs";
        EXPECT_EQ(kq.poll(ev, 2), 0);
        ASSERT_EQ(kq.change(EVFILT_SIGNAL, SIGUSR1, EV_DELETE), 0);
    }
    struct sigaction now {};
    ::sigaction(SIGUSR1, nullptr, &now);
    EXPECT_EQ(now.sa_handler, sa.sa_handler) << "deleting the knote restores the handler";
    ::sigaction(SIGUSR1, &old, nullptr);
}

TEST(KqueueEmulation, SignalFromAnotherThreadWakesAWaitingKevent) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = [](int) {};
    ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
    Kq kq;
    ASSERT_EQ(kq.change(EVFILT_SIGNAL, SIGUSR2, EV_ADD), 0);
    std::thread sender([] {
        std::this_thread::sleep_for(20ms);
        ::kill(::getpid(), SIGUSR2);
    });
    struct kevent ev[2];
    int n;
    do  // EINTR when the signal lands on this thread, as on FreeBSD
        n = ::kevent(kq.fd, nullptr, 0, ev, 2, nullptr);
    while (n < 0 && errno == EINTR);
    sender.join();
    ASSERT_EQ(n, 1);
    EXPECT_EQ(ev[0].data, 1);
    kq.change(EVFILT_SIGNAL, SIGUSR2, EV_DELETE);
    ::sigaction(SIGUSR2, &old, nullptr);
}

TEST(KqueueEmulation, Timeouts) {
    Kq kq;
    struct kevent ev[1];
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(kq.poll(ev, 1, 0), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 50ms) << "{0, 0} polls";
    start = std::chrono::steady_clock::now();
    timespec ts{0, 30 * 1000000 + 1};
    EXPECT_EQ(::kevent(kq.fd, nullptr, 0, ev, 1, &ts), 0);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
    ts = {0, 1000000000};
    EXPECT_EQ(::kevent(kq.fd, nullptr, 0, ev, 1, &ts), -1);
    EXPECT_EQ(errno, EINVAL);
    // No event list: the changes are applied and kevent returns at once, even with no timeout.
    EXPECT_EQ(::kevent(kq.fd, nullptr, 0, nullptr, 0, nullptr), 0);
}

}  // namespace
