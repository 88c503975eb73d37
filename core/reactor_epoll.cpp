// Reactor backend for Linux: edge-triggered epoll and eventfd (or a pipe under portable
// paths) for wake-ups. See core/detail/reactor.hpp.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "core/detail/platform.hpp"
#include "core/detail/reactor.hpp"
#include <weft/error.hpp>

namespace weft::detail {

namespace {
// Tokens are (generation << 32 | slot) with generation >= 1, so this never collides.
constexpr uint64_t kWakeToken = ~uint64_t{0};

uint32_t to_epoll(uint32_t interest) {
    uint32_t ev = EPOLLET | EPOLLRDHUP;
    if (interest & kReadable) ev |= EPOLLIN;
    if (interest & kWritable) ev |= EPOLLOUT;
    return ev;
}

uint32_t from_epoll(uint32_t ev) {
    uint32_t out = 0;
    if (ev & (EPOLLIN | EPOLLPRI)) out |= kReadable;
    if (ev & EPOLLOUT) out |= kWritable;
    if (ev & EPOLLRDHUP) out |= kReadable | kHangup;
    if (ev & EPOLLHUP) out |= kReadable | kWritable | kHangup;
    if (ev & EPOLLERR) out |= kReadable | kWritable | kError;
    return out;
}
}  // namespace

struct Reactor::State {
    int epfd = -1;
    Wakeup wakeup;
    std::vector<epoll_event> events;  // grown to the largest capacity asked of poll()
};

Reactor::Reactor() : s_(new State) {
    s_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (s_->epfd < 0) {
        int err = errno;
        delete s_;
        throw SystemError(err, "epoll_create1");
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kWakeToken;
    if (::epoll_ctl(s_->epfd, EPOLL_CTL_ADD, s_->wakeup.fd(), &ev) < 0) {
        int err = errno;
        ::close(s_->epfd);
        delete s_;
        throw SystemError(err, "epoll_ctl(ADD wake-up fd)");
    }
}

Reactor::~Reactor() {
    ::close(s_->epfd);
    delete s_;
}

const char* Reactor::name() noexcept { return "epoll"; }

static void control(int epfd, int op, int fd, uint32_t interest, uint64_t token) {
    epoll_event ev{};
    ev.events = to_epoll(interest);
    ev.data.u64 = token;
    if (::epoll_ctl(epfd, op, fd, &ev) < 0)
        throw_errno(std::string(op == EPOLL_CTL_ADD ? "epoll_ctl(ADD" : "epoll_ctl(MOD") +
                    ", fd=" + std::to_string(fd) + ")");
}

void Reactor::add(int fd, uint32_t interest, uint64_t token) {
    control(s_->epfd, EPOLL_CTL_ADD, fd, interest, token);
}

void Reactor::modify(int fd, uint32_t interest, uint64_t token) {
    control(s_->epfd, EPOLL_CTL_MOD, fd, interest, token);
}

void Reactor::rearm(int, uint32_t) {}  // edge-triggered: the next edge is reported anyway

void Reactor::remove(int fd) noexcept {
    epoll_event ev{};  // non-null for kernels before 2.6.9
    ::epoll_ctl(s_->epfd, EPOLL_CTL_DEL, fd, &ev);
}

int Reactor::poll(int timeout_ms, ReactorEvent* out, int capacity) {
    if (s_->events.size() < size_t(capacity)) s_->events.resize(size_t(capacity));
    int n = ::epoll_wait(s_->epfd, s_->events.data(), capacity, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        throw_errno("epoll_wait");
    }
    int count = 0;
    for (int i = 0; i < n; ++i) {
        const epoll_event& ev = s_->events[size_t(i)];
        if (ev.data.u64 == kWakeToken)
            s_->wakeup.drain();
        else
            out[count++] = {ev.data.u64, from_epoll(ev.events)};
    }
    return count;
}

void Reactor::wake() noexcept { s_->wakeup.notify(); }

}  // namespace weft::detail
