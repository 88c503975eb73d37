// Reactor backend for FreeBSD and macOS: kqueue with EV_CLEAR read/write filters and an
// EVFILT_USER knote for wake-ups, so no pipes. See core/detail/reactor.hpp.
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "core/detail/reactor.hpp"
#include <weft/error.hpp>

namespace weft::detail {

namespace {
// Tokens (generation << 32 | slot) travel in udata.
static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "kqueue backend needs 64-bit udata");

constexpr uint8_t kRegistered = 0x80;  // table marker, so an fd with no direction still counts

// Moves fd's filters from directions `had` to `want`, added ones carrying token. EV_RECEIPT
// makes kevent apply every change and report each result instead of stopping at the first
// failure; a result list of exactly that size leaves no room for real events. Deletes may
// fail harmlessly (a closed fd's knotes are gone), so this returns the first EV_ADD error.
int change(int kq, int fd, uint32_t had, uint32_t want, uint64_t token) noexcept {
    struct kevent changes[2], results[2];
    int n = 0;
    for (uint32_t bit : {kReadable, kWritable}) {
        short filter = bit == kReadable ? EVFILT_READ : EVFILT_WRITE;
        if (want & bit)
            EV_SET(&changes[n], fd, filter, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0,
                   reinterpret_cast<void*>(uintptr_t(token)));
        else if (had & bit)
            EV_SET(&changes[n], fd, filter, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
        else
            continue;
        ++n;
    }
    if (n == 0) return 0;
    timespec zero{};
    int got = ::kevent(kq, changes, n, results, n, &zero);
    if (got < 0) return errno;
    for (int i = 0; i < got; ++i) {
        uint32_t bit = results[i].filter == EVFILT_READ ? kReadable : kWritable;
        if (results[i].data != 0 && (want & bit)) return int(results[i].data);
    }
    return 0;
}

uint32_t from_kevent(const struct kevent& ev) {
    if (ev.flags & EV_ERROR) return kReadable | kWritable | kError;
    uint32_t out = ev.filter == EVFILT_READ ? kReadable : kWritable;
    if (ev.flags & EV_EOF) {
        // Read EOF is the peer's close. Write EOF only says writes now fail (EPIPE or the
        // socket error); our own shutdown(SHUT_WR) raises it too, so it is no hangup.
        if (ev.filter == EVFILT_READ) out |= kHangup;
        if (ev.fflags != 0) out |= kError;  // sockets put so_error in fflags
    }
    return out;
}

}  // namespace

struct Reactor::State {
    int kq = -1;
    std::vector<uint8_t> watched;       // fd -> kRegistered | directions, 0 if unregistered
    std::vector<struct kevent> events;  // grown to the largest capacity asked of poll()

    uint8_t& entry(int fd) {
        if (size_t(fd) >= watched.size()) watched.resize(size_t(fd) * 2 + 16, 0);
        return watched[size_t(fd)];
    }
    uint8_t find(int fd) const {
        return fd >= 0 && size_t(fd) < watched.size() ? watched[size_t(fd)] : 0;
    }
};

Reactor::Reactor() : s_(new State) {
    // kqueue() + FD_CLOEXEC everywhere, since macOS has no kqueue1(). The gap before fcntl
    // cannot leak the queue into a child: fork() does not inherit kqueues.
    s_->kq = ::kqueue();
    const char* failed = nullptr;
    struct kevent wake;
    EV_SET(&wake, 0, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, nullptr);
    if (s_->kq < 0)
        failed = "kqueue";
    else if (::fcntl(s_->kq, F_SETFD, FD_CLOEXEC) < 0)
        failed = "fcntl(FD_CLOEXEC)";
    else if (::kevent(s_->kq, &wake, 1, nullptr, 0, nullptr) < 0)
        failed = "kevent(ADD EVFILT_USER)";
    if (failed) {
        int err = errno;
        if (s_->kq >= 0) ::close(s_->kq);
        delete s_;
        throw SystemError(err, failed);
    }
}

Reactor::~Reactor() {
    ::close(s_->kq);  // drops every knote
    delete s_;
}

const char* Reactor::name() noexcept { return "kqueue"; }

static std::string describe(const char* op, int fd) {
    return std::string("kqueue reactor ") + op + "(fd=" + std::to_string(fd) + ")";
}

void Reactor::add(int fd, uint32_t interest, uint64_t token) {
    if (fd < 0) throw SystemError(EBADF, describe("add", fd));
    uint8_t& watched = s_->entry(fd);
    // EV_ADD on a registered fd would silently modify it, so the table answers EEXIST.
    if (watched) throw SystemError(EEXIST, describe("add", fd));
    interest &= kReadable | kWritable;
    // kevent reports EBADF itself, but with no direction there is no change to report it.
    if (!interest && ::fcntl(fd, F_GETFD) < 0) throw SystemError(EBADF, describe("add", fd));
    if (int err = change(s_->kq, fd, 0, interest, token)) {
        change(s_->kq, fd, interest, 0, 0);  // the other filter may have been added
        throw SystemError(err, describe("add", fd));
    }
    watched = kRegistered | uint8_t(interest);
}

void Reactor::modify(int fd, uint32_t interest, uint64_t token) {
    uint8_t had = s_->find(fd);
    if (!had) throw SystemError(ENOENT, describe("modify", fd));
    interest &= kReadable | kWritable;
    // EV_ADD on an existing knote replaces its udata and re-evaluates it, which re-arms.
    if (int err = change(s_->kq, fd, had, interest, token)) {
        change(s_->kq, fd, had | interest, 0, 0);  // leave nothing half-replaced
        s_->watched[size_t(fd)] = kRegistered;
        throw SystemError(err, describe("modify", fd));
    }
    s_->watched[size_t(fd)] = kRegistered | uint8_t(interest);
}

void Reactor::rearm(int, uint32_t) {}  // EV_CLEAR: the next edge is reported anyway

void Reactor::remove(int fd) noexcept {
    uint8_t had = s_->find(fd);
    if (!had) return;
    change(s_->kq, fd, had, 0, 0);
    s_->watched[size_t(fd)] = 0;
}

int Reactor::poll(int timeout_ms, ReactorEvent* out, int capacity) {
    // Each kevent yields at most one event, so asking for capacity keeps within it; knotes
    // left in the queue stay active for the next call.
    if (s_->events.size() < size_t(capacity)) s_->events.resize(size_t(capacity));
    timespec ts{timeout_ms / 1000, long(timeout_ms % 1000) * 1000000};
    int n = ::kevent(s_->kq, nullptr, 0, s_->events.data(), capacity,
                     timeout_ms < 0 ? nullptr : &ts);
    if (n < 0) {
        if (errno == EINTR) return 0;
        throw_errno("kevent");
    }
    int count = 0;
    for (int i = 0; i < n; ++i) {
        const struct kevent& ev = s_->events[size_t(i)];
        if (ev.filter == EVFILT_USER) continue;  // a wake-up; EV_CLEAR has reset it
        uint64_t token = uint64_t(reinterpret_cast<uintptr_t>(ev.udata));
        uint32_t events = from_kevent(ev);
        // Both filters of one fd often come back side by side: one event, as on epoll.
        if (count > 0 && out[count - 1].token == token)
            out[count - 1].events |= events;
        else
            out[count++] = {token, events};
    }
    return count;
}

void Reactor::wake() noexcept {
    int saved = errno;  // callable from a signal handler
    struct kevent ev;
    EV_SET(&ev, 0, EVFILT_USER, 0, NOTE_TRIGGER, 0, nullptr);
    ::kevent(s_->kq, &ev, 1, nullptr, 0, nullptr);
    errno = saved;
}

}  // namespace weft::detail
