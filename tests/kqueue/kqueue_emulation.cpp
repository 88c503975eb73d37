// Test-only kqueue(2) / kevent(2) for Linux, on epoll and eventfd, so that
// core/reactor_kqueue.cpp runs here (the core suite's 'kqueue-emulated' variant). It follows
// FreeBSD's kqueue(2) manual page and the order of work in FreeBSD's kern_event.c: changes
// are applied one by one (kqueue_register), then triggered knotes are collected from an
// activation queue (kqueue_scan), each filter re-evaluated as it is collected.
//
// Model. A knote is keyed by (ident, filter) and is active (its condition was seen true
// since it was last collected), queued (on the activation queue) and maybe disabled; as in
// FreeBSD, a disabled knote stays active and is queued again by EV_ENABLE. Activation
// sources stand in for the kernel's knote() calls:
//  - EVFILT_READ / EVFILT_WRITE: the fd sits in the kqueue's epoll set, edge-triggered, with
//    the directions its knotes want. An epoll edge activates the knote of that direction if
//    its condition holds, evaluated with poll(): READ when readable, at EOF (POLLRDHUP or
//    POLLHUP, which sets EV_EOF) or with an error; data = FIONREAD. WRITE when writable, at
//    POLLHUP or POLLERR (EV_EOF); data = room left in the socket or pipe buffer.
//  - EVFILT_USER: NOTE_TRIGGER activates it (filt_usertouch's rules for fflags and
//    EV_CLEAR); the change also writes a process-wide eventfd that is in every emulated
//    kqueue's epoll set (edge-triggered, never read), so a kevent() blocked in another
//    thread wakes up.
//  - EVFILT_SIGNAL: at EV_ADD the signal's current action is saved and replaced with a
//    handler that counts deliveries (one atomic counter per signal), writes that eventfd and
//    calls the saved handler. A knote is active while the counter differs from what it last
//    reported; data = deliveries since then; EV_CLEAR is implied, as in FreeBSD. The saved
//    action comes back when the last emulated signal knote for that signal is deleted and
//    the counting handler is still in place.
// Collecting: a disabled knote leaves the queue; EV_ONESHOT delivers what was found at
// activation and deletes the knote; otherwise the filter is re-evaluated (false: the knote
// goes inactive and nothing is returned), then EV_CLEAR resets it, while a level knote goes
// back to the end of the queue. Knotes that do not fit in the event list stay queued for the
// next call. Changes: an error, or any change with EV_RECEIPT, becomes an EV_ERROR entry
// (data = errno or 0) while the event list has room, else kevent() fails with that errno and
// stops; if any such entry was returned, kevent() returns them without collecting events.
// Timeout: NULL waits, {0, 0} polls, anything else waits that long rounded up to a
// millisecond; a signal caught while waiting returns EINTR (FreeBSD does not restart).
//
// Not modelled (only a real BSD or macOS shows these):
//  - Filters other than READ / WRITE / USER / SIGNAL (kevent says EINVAL), EV_DISPATCH,
//    NOTE_LOWAT, files epoll refuses (regular files: EPERM where FreeBSD reports them always
//    ready), a kqueue watching a kqueue, and fflags/data of EVFILT_USER beyond filt_usertouch's.
//  - One epoll registration serves both filters of an fd: an edge in one direction also
//    activates the other filter if its condition holds, and adding the second filter
//    re-arms the first. kqueue keeps the two apart. Both only ever add events.
//  - Closing an fd drops its knotes in kqueue at once; here they are found stale (fstat's
//    device and inode changed, or the fd is gone) only when next touched: by a change, an
//    epoll edge or collection. An fd number reused for another anonymous-inode file
//    (eventfd, epoll) is not recognised as a different file.
//  - EV_EOF: fflags carries EIO as a marker when the socket has a pending error (POLLERR),
//    not the socket's so_error: reading SO_ERROR on Linux clears it. EV_EOF on the write
//    filter after only our own shutdown(SHUT_WR): Linux reports no hangup for it. A
//    listening socket's READ data is 1, not the accept queue length.
//  - Signals: a counting handler instead of signalfd, because signalfd only sees a signal
//    that is blocked in every thread, and weft, like kqueue's users, blocks nothing; so the
//    emulation sees only signals whose handler runs, not ones set to SIG_IGN or SIG_DFL
//    before the knote was added (the kqueue backend always installs a catching handler
//    first). A saved SIG_DFL is not re-raised; sa_mask and SA_RESETHAND of the saved action
//    are not kept.
//  - kqueues are inherited across fork() (they are epoll fds); real ones are not. Not
//    async-signal-safe (kevent takes a mutex), unlike the real system call. Knotes of a
//    closed kqueue live on until its fd number is handed out by kqueue() again.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/event.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace {

constexpr uint64_t kNotifyTag = ~uint64_t{0};  // epoll data of the process-wide eventfd

using Key = std::pair<uintptr_t, short>;  // (ident, filter)

struct Knote {
    struct kevent kev {};  // ident, filter, flags and udata as registered; the last fflags/data
    uint64_t id = 0;       // tells this knote from a deleted one with the same key
    unsigned sfflags = 0;  // EVFILT_USER: the fflags set by the user
    intptr_t sdata = 0;    // EVFILT_USER: the data set by the user
    bool active = false;
    bool queued = false;
    bool disabled = false;
    bool triggered = false;  // EVFILT_USER
    uint64_t reported = 0;   // EVFILT_SIGNAL: deliveries counted when last reported
};

struct WatchedFd {  // an fd in a kqueue's epoll set
    uint32_t events;
    uint32_t generation;  // in the epoll data, so an old registration's edges are ignored
    dev_t dev;
    ino_t ino;
};

struct Queue {  // one emulated kqueue; every field guarded by g_mutex
    int epfd = -1;
    std::map<Key, Knote> knotes;
    std::deque<std::pair<Key, uint64_t>> queue;  // queued knotes, by activation order
    std::map<int, WatchedFd> fds;
    uint64_t next_id = 1;
    uint32_t next_generation = 1;
    int signal_knotes = 0;
};

std::mutex g_mutex;
std::map<int, std::shared_ptr<Queue>> g_queues;  // guarded by g_mutex; by kqueue fd
int g_signal_knotes[NSIG];                       // guarded by g_mutex; knotes per signal
struct sigaction g_saved_action[NSIG];           // guarded by g_mutex; read by the handler
std::atomic<uint64_t> g_deliveries[NSIG];        // any thread and signal handlers

// Opened before main() so that no test sees it appear as a leaked descriptor.
const int g_notify_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

void notify() noexcept {
    uint64_t one = 1;
    ssize_t ignored = ::write(g_notify_fd, &one, sizeof one);
    (void)ignored;
}

void count_signal(int signo, siginfo_t* info, void* context) {
    int saved = errno;
    g_deliveries[signo].fetch_add(1, std::memory_order_release);
    notify();
    const struct sigaction& chained = g_saved_action[signo];
    if (chained.sa_flags & SA_SIGINFO)
        chained.sa_sigaction(signo, info, context);
    else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN)
        chained.sa_handler(signo);
    errno = saved;
}

bool counting(const struct sigaction& sa) {
    return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == count_signal;
}

bool is_fd_filter(short filter) {
    return filter == EVFILT_READ || filter == EVFILT_WRITE;
}

uint32_t epoll_direction(short filter) {
    return filter == EVFILT_READ ? EPOLLIN | EPOLLRDHUP : EPOLLOUT;
}

// The fd's registration no longer names the file now behind that number.
bool stale(const Queue& q, int fd) {
    auto it = q.fds.find(fd);
    struct stat st;
    return it != q.fds.end() &&
           (::fstat(fd, &st) < 0 || st.st_dev != it->second.dev || st.st_ino != it->second.ino);
}

void unqueue(Queue& q, const Key& key) {
    for (auto it = q.queue.begin(); it != q.queue.end(); ++it)
        if (it->first == key) {
            q.queue.erase(it);
            return;
        }
}

void drop(Queue& q, std::map<Key, Knote>::iterator it) {
    Knote& kn = it->second;
    if (kn.queued) unqueue(q, it->first);
    if (is_fd_filter(kn.kev.filter)) {
        int fd = int(kn.kev.ident);
        Key other{kn.kev.ident, kn.kev.filter == EVFILT_READ ? EVFILT_WRITE : EVFILT_READ};
        // Shrinking the interest would re-arm the other direction, so the fd only leaves
        // the epoll set with its last knote; until then edges without a knote are ignored.
        if (!q.knotes.count(other) && q.fds.erase(fd)) {
            epoll_event ev{};
            ::epoll_ctl(q.epfd, EPOLL_CTL_DEL, fd, &ev);  // fails harmlessly if closed
        }
    } else if (kn.kev.filter == EVFILT_SIGNAL) {
        int signo = int(kn.kev.ident);
        --q.signal_knotes;
        if (--g_signal_knotes[signo] == 0) {
            struct sigaction current;
            if (::sigaction(signo, nullptr, &current) == 0 && counting(current))
                ::sigaction(signo, &g_saved_action[signo], nullptr);
        }
    }
    q.knotes.erase(it);
}

// Knotes of an fd that was closed behind the kqueue's back are gone, as kqueue drops them
// at close(); the epoll registration went with the file.
void drop_stale(Queue& q, int fd) {
    for (short filter : {EVFILT_READ, EVFILT_WRITE}) {
        auto it = q.knotes.find({uintptr_t(fd), filter});
        if (it != q.knotes.end()) drop(q, it);
    }
    q.fds.erase(fd);
}

// The filter's f_event: is the condition true now? Sets data, fflags and EV_EOF.
bool evaluate(Knote& kn) {
    struct kevent& kev = kn.kev;
    switch (kev.filter) {
        case EVFILT_USER:
            return kn.triggered;
        case EVFILT_SIGNAL: {
            uint64_t n = g_deliveries[kev.ident].load(std::memory_order_acquire);
            kev.data = intptr_t(n - kn.reported);
            return n != kn.reported;
        }
        default:
            break;
    }
    int fd = int(kev.ident);
    pollfd p{fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) < 0 || (p.revents & POLLNVAL)) return false;
    kev.flags &= ~EV_EOF;
    kev.fflags = 0;
    kev.data = 0;
    bool eof;
    bool ready;
    if (kev.filter == EVFILT_READ) {
        eof = p.revents & (POLLRDHUP | POLLHUP);
        ready = eof || (p.revents & (POLLIN | POLLERR));
        int n = 0;
        if (::ioctl(fd, FIONREAD, &n) == 0)
            kev.data = n;
        else if (p.revents & POLLIN)
            kev.data = 1;  // a listening socket: at least one connection to accept
    } else {
        eof = p.revents & (POLLHUP | POLLERR);
        ready = eof || (p.revents & POLLOUT);
        int size = 0, queued = 0;
        socklen_t len = sizeof size;
        if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0) {
            if (::ioctl(fd, TIOCOUTQ, &queued) == 0) kev.data = size - queued;
        } else if ((size = ::fcntl(fd, F_GETPIPE_SZ)) > 0 && ::ioctl(fd, FIONREAD, &queued) == 0) {
            kev.data = size - queued;
        }
    }
    if (eof) {
        kev.flags |= EV_EOF;
        if (p.revents & POLLERR) kev.fflags = EIO;  // a marker: see "Not modelled"
    }
    return ready;
}

void enqueue(Queue& q, Knote& kn) {
    kn.queued = true;
    q.queue.emplace_back(Key{kn.kev.ident, kn.kev.filter}, kn.id);
}

// KNOTE_ACTIVATE after a true f_event. Returns whether the knote was queued.
bool activate(Queue& q, Knote& kn) {
    if (!evaluate(kn)) return false;
    kn.active = true;
    if (kn.queued || kn.disabled) return false;
    enqueue(q, kn);
    return true;
}

int watch_fd(Queue& q, int fd, short filter) {
    uint32_t want = epoll_direction(filter);
    auto it = q.fds.find(fd);
    if (it != q.fds.end() && (it->second.events & want) == want) return 0;
    epoll_event ev{};
    if (it == q.fds.end()) {
        struct stat st;
        if (::fstat(fd, &st) < 0) return errno;
        WatchedFd w{EPOLLET | want, q.next_generation++, st.st_dev, st.st_ino};
        ev.events = w.events;
        ev.data.u64 = uint64_t(w.generation) << 32 | uint32_t(fd);
        if (::epoll_ctl(q.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return errno;
        q.fds.emplace(fd, w);
        return 0;
    }
    ev.events = it->second.events | want;
    ev.data.u64 = uint64_t(it->second.generation) << 32 | uint32_t(fd);
    if (::epoll_ctl(q.epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        if (errno != ENOENT) return errno;
        // Closed and reopened as a file stale() cannot tell apart: epoll forgot the old one.
        if (::epoll_ctl(q.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return errno;
    }
    it->second.events = ev.events;
    return 0;
}

int attach(Queue& q, Knote& kn, const struct kevent& change) {
    switch (change.filter) {
        case EVFILT_READ:
        case EVFILT_WRITE:
            return watch_fd(q, int(change.ident), change.filter);
        case EVFILT_USER:
            kn.sfflags = change.fflags;
            kn.sdata = change.data;
            kn.triggered = change.fflags & NOTE_TRIGGER;
            return 0;
        case EVFILT_SIGNAL: {
            int signo = int(change.ident);
            struct sigaction current;
            if (::sigaction(signo, nullptr, &current) < 0) return errno;
            if (!counting(current)) {
                g_saved_action[signo] = current;
                struct sigaction sa {};
                sa.sa_sigaction = count_signal;
                sa.sa_flags = SA_SIGINFO | (current.sa_flags & SA_RESTART);
                sigemptyset(&sa.sa_mask);
                ::sigaction(signo, &sa, nullptr);  // fails for SIGKILL/SIGSTOP: never counted
            }
            kn.kev.flags |= EV_CLEAR;
            kn.reported = g_deliveries[signo].load(std::memory_order_acquire);
            ++g_signal_knotes[signo];
            ++q.signal_knotes;
            return 0;
        }
        default:
            return EINVAL;
    }
}

// kqueue_register: one change. Returns 0 or an errno value; sets `woke` when it queued a
// knote (a kevent() waiting in another thread must then wake up).
int apply(Queue& q, const struct kevent& change, bool& woke) {
    short filter = change.filter;
    if (!is_fd_filter(filter) && filter != EVFILT_USER && filter != EVFILT_SIGNAL) return EINVAL;
    if (is_fd_filter(filter)) {
        int fd = int(change.ident);
        if (change.ident > uintptr_t(INT32_MAX) || ::fcntl(fd, F_GETFD) < 0) return EBADF;
        if (stale(q, fd)) drop_stale(q, fd);
    } else if (filter == EVFILT_SIGNAL && (change.ident == 0 || change.ident >= NSIG)) {
        return EINVAL;
    }
    Key key{change.ident, filter};
    auto it = q.knotes.find(key);
    if (it == q.knotes.end()) {
        if (!(change.flags & EV_ADD)) return ENOENT;
        Knote kn;
        kn.kev = change;
        kn.kev.flags &= ~(EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE | EV_SYSFLAGS);
        kn.kev.fflags = 0;
        kn.kev.data = 0;
        kn.id = q.next_id++;
        if (int err = attach(q, kn, change)) return err;
        it = q.knotes.emplace(key, kn).first;
    } else if (change.flags & EV_DELETE) {
        drop(q, it);
        return 0;
    } else {
        Knote& kn = it->second;
        kn.kev.udata = change.udata;
        if (filter == EVFILT_USER) {  // filt_usertouch, EVENT_REGISTER
            if (change.fflags & NOTE_TRIGGER) kn.triggered = true;
            unsigned ff = change.fflags & NOTE_FFLAGSMASK;
            switch (change.fflags & NOTE_FFCTRLMASK) {
                case NOTE_FFAND:
                    kn.sfflags &= ff;
                    break;
                case NOTE_FFOR:
                    kn.sfflags |= ff;
                    break;
                case NOTE_FFCOPY:
                    kn.sfflags = ff;
                    break;
                default:
                    break;
            }
            kn.sdata = change.data;
            if (change.flags & EV_CLEAR) kn.triggered = false;
        } else if (is_fd_filter(filter) && (change.flags & EV_ADD)) {
            if (int err = watch_fd(q, int(change.ident), filter)) return err;
        }
    }
    Knote& kn = it->second;
    woke |= activate(q, kn);
    if (change.flags & EV_DISABLE) kn.disabled = true;
    if ((change.flags & EV_ENABLE) && kn.disabled) {
        kn.disabled = false;
        if (kn.active && !kn.queued) {
            enqueue(q, kn);
            woke = true;
        }
    }
    return 0;
}

// Turns epoll edges into activations.
void harvest(Queue& q, const epoll_event* events, int n) {
    for (int i = 0; i < n; ++i) {
        uint64_t tag = events[i].data.u64;
        if (tag == kNotifyTag) continue;  // signals are checked below, user knotes at change
        int fd = int(uint32_t(tag));
        auto w = q.fds.find(fd);
        if (w == q.fds.end() || w->second.generation != uint32_t(tag >> 32)) continue;
        if (stale(q, fd)) {
            drop_stale(q, fd);
            continue;
        }
        uint32_t got = events[i].events;
        for (short filter : {EVFILT_READ, EVFILT_WRITE}) {
            auto it = q.knotes.find({uintptr_t(fd), filter});
            uint32_t wake = filter == EVFILT_READ ? EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR
                                                  : EPOLLOUT | EPOLLHUP | EPOLLERR;
            if (it != q.knotes.end() && (got & wake)) activate(q, it->second);
        }
    }
    if (q.signal_knotes > 0)
        for (auto& [key, kn] : q.knotes)
            if (key.second == EVFILT_SIGNAL && !kn.active) activate(q, kn);
}

// kqueue_scan's loop over the queue, without waiting.
int collect(Queue& q, struct kevent* out, int capacity) {
    int n = 0;
    for (size_t left = q.queue.size(); left > 0 && n < capacity; --left) {
        auto [key, id] = q.queue.front();
        q.queue.pop_front();
        auto it = q.knotes.find(key);
        if (it == q.knotes.end() || it->second.id != id) continue;
        Knote& kn = it->second;
        kn.queued = false;
        if (kn.disabled) continue;  // still active: EV_ENABLE queues it again
        if (is_fd_filter(key.second) && stale(q, int(key.first))) {
            drop_stale(q, int(key.first));
            continue;
        }
        if (kn.kev.flags & EV_ONESHOT) {
            out[n] = kn.kev;
            if (key.second == EVFILT_USER) {
                out[n].fflags = kn.sfflags;
                out[n].data = kn.sdata;
            }
            ++n;
            drop(q, it);
            continue;
        }
        if (!evaluate(kn)) {
            kn.active = false;
            continue;
        }
        out[n] = kn.kev;
        if (key.second == EVFILT_USER) {
            out[n].fflags = kn.sfflags;
            out[n].data = kn.sdata;
        }
        ++n;
        if (kn.kev.flags & EV_CLEAR) {
            kn.active = false;
            kn.triggered = false;
            if (key.second == EVFILT_SIGNAL) kn.reported += uint64_t(kn.kev.data);
            kn.kev.data = 0;
            kn.kev.fflags = 0;
        } else {
            enqueue(q, kn);
        }
    }
    return n;
}

std::shared_ptr<Queue> find_queue(int kq) {
    auto it = g_queues.find(kq);
    if (it == g_queues.end()) return nullptr;
    // A closed kqueue whose number now names another file.
    struct stat st;
    if (::fstat(kq, &st) < 0) return nullptr;
    return it->second;
}

}  // namespace

extern "C" int kqueue(void) {
    int epfd = ::epoll_create1(0);  // real kqueue() sets no close-on-exec either
    if (epfd < 0) return -1;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kNotifyTag;
    if (g_notify_fd < 0 || ::epoll_ctl(epfd, EPOLL_CTL_ADD, g_notify_fd, &ev) < 0) {
        int err = g_notify_fd < 0 ? EMFILE : errno;
        ::close(epfd);
        errno = err;
        return -1;
    }
    auto q = std::make_shared<Queue>();
    q->epfd = epfd;
    std::lock_guard lock(g_mutex);
    if (auto old = g_queues.find(epfd); old != g_queues.end()) {
        // The previous kqueue with this number was closed: its knotes went with it.
        Queue& gone = *old->second;
        for (auto& [key, kn] : gone.knotes)
            if (key.second == EVFILT_SIGNAL) --g_signal_knotes[key.first];
        g_queues.erase(old);
    }
    g_queues.emplace(epfd, std::move(q));
    return epfd;
}

extern "C" int kevent(int kq, const struct kevent* changelist, int nchanges,
                      struct kevent* eventlist, int nevents, const struct timespec* timeout) {
    using Clock = std::chrono::steady_clock;
    std::unique_lock lock(g_mutex);
    std::shared_ptr<Queue> q = find_queue(kq);
    if (!q) {
        errno = EBADF;
        return -1;
    }
    int nerrors = 0;
    bool woke = false;
    for (int i = 0; i < nchanges; ++i) {
        struct kevent change = changelist[i];
        if (change.filter == 0) continue;
        change.flags &= ~EV_SYSFLAGS;
        int err = apply(*q, change, woke);
        if (err == 0 && !(change.flags & EV_RECEIPT)) continue;
        if (nevents == 0) {
            if (woke) notify();
            if (err == 0) return nerrors;
            errno = err;
            return -1;
        }
        change.flags = EV_ERROR;
        change.data = err;
        eventlist[nerrors++] = change;
        --nevents;
    }
    if (woke) notify();
    if (nerrors > 0 || nevents == 0) return nerrors;

    bool forever = timeout == nullptr;
    Clock::time_point deadline = Clock::now();
    if (!forever) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000) {
            errno = EINVAL;
            return -1;
        }
        deadline +=
            std::chrono::seconds(timeout->tv_sec) + std::chrono::nanoseconds(timeout->tv_nsec);
    }
    epoll_event events[64];
    int got = ::epoll_wait(q->epfd, events, 64, 0);
    for (;;) {
        if (got > 0)
            harvest(*q, events, got);
        else
            harvest(*q, nullptr, 0);  // signal knotes
        if (int n = collect(*q, eventlist, nevents); n > 0) return n;
        int wait_ms = -1;
        if (!forever) {
            auto left = deadline - Clock::now();
            if (left <= Clock::duration::zero()) return 0;
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
            wait_ms = ms > INT32_MAX ? INT32_MAX : int(ms);
        }
        lock.unlock();
        got = ::epoll_wait(q->epfd, events, 64, wait_ms);
        int err = errno;
        lock.lock();
        if (got < 0) {
            errno = err;
            return -1;  // EINTR: a caught signal ends the wait, as on FreeBSD
        }
    }
}
