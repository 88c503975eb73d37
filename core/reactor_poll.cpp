// Reactor backend for any POSIX system: poll(2) over a dense pollfd array. Edges are
// emulated by dropping a direction from the set once reported until rearm() names it;
// an fd with no armed direction is parked (negative fd) so POLLHUP cannot spin.
#include <fcntl.h>
#include <poll.h>

#include <cerrno>
#include <string>
#include <vector>

#include "core/detail/platform.hpp"
#include "core/detail/reactor.hpp"
#include <weft/error.hpp>

namespace weft::detail {

namespace {
constexpr int kFixedEntries = 1;  // [0] the wake-up fd
constexpr int kNone = -1;
}  // namespace

struct Reactor::State {
    Wakeup wakeup;
    std::vector<pollfd> fds;          // kFixedEntries, then one per registered fd
    std::vector<uint64_t> tokens;     // parallel to fds
    std::vector<uint32_t> interest;   // parallel to fds
    std::vector<uint32_t> armed;      // parallel to fds: directions not yet reported
    std::vector<int> index_of_fd;     // fd -> position in fds, kNone if unregistered

    int& index(int fd) {
        if (size_t(fd) >= index_of_fd.size()) index_of_fd.resize(size_t(fd) * 2 + 16, kNone);
        return index_of_fd[size_t(fd)];
    }
    int find(int fd) const {
        return fd >= 0 && size_t(fd) < index_of_fd.size() ? index_of_fd[size_t(fd)] : kNone;
    }
    void refresh(int i, int fd) {
        short ev = 0;
        uint32_t want = interest[i] & armed[i];
        if (want & kReadable) ev |= POLLIN;
        if (want & kWritable) ev |= POLLOUT;
        fds[i].events = ev;
        fds[i].fd = ev ? fd : ~fd;  // negative: poll skips it
    }
    int real_fd(int i) const { return fds[i].fd < 0 ? ~fds[i].fd : fds[i].fd; }
};

Reactor::Reactor() : s_(new State) {
    s_->fds.push_back({s_->wakeup.fd(), POLLIN, 0});
    s_->tokens.resize(kFixedEntries);
    s_->interest.resize(kFixedEntries);
    s_->armed.resize(kFixedEntries);
}

Reactor::~Reactor() { delete s_; }

const char* Reactor::name() noexcept { return "poll"; }

void Reactor::add(int fd, uint32_t interest, uint64_t token) {
    std::string what = "poll reactor add(fd=" + std::to_string(fd) + ")";
    if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) throw SystemError(EBADF, what);
    int& idx = s_->index(fd);
    if (idx != kNone) throw SystemError(EEXIST, what);
    idx = int(s_->fds.size());
    s_->fds.push_back({fd, 0, 0});
    s_->tokens.push_back(token);
    s_->interest.push_back(interest);
    s_->armed.push_back(kReadable | kWritable);
    s_->refresh(idx, fd);
}

void Reactor::modify(int fd, uint32_t interest, uint64_t token) {
    int i = s_->find(fd);
    if (i == kNone) throw SystemError(ENOENT, "poll reactor modify(fd=" + std::to_string(fd) + ")");
    s_->tokens[i] = token;
    s_->interest[i] = interest;
    s_->armed[i] = kReadable | kWritable;
    s_->refresh(i, fd);
}

void Reactor::rearm(int fd, uint32_t directions) {
    int i = s_->find(fd);
    if (i == kNone) return;
    s_->armed[i] |= directions & (kReadable | kWritable);
    s_->refresh(i, fd);
}

void Reactor::remove(int fd) noexcept {
    int i = s_->find(fd);
    if (i == kNone) return;
    int last = int(s_->fds.size()) - 1;
    if (i != last) {
        s_->fds[i] = s_->fds[last];
        s_->tokens[i] = s_->tokens[last];
        s_->interest[i] = s_->interest[last];
        s_->armed[i] = s_->armed[last];
        s_->index_of_fd[size_t(s_->real_fd(i))] = i;
    }
    s_->fds.pop_back();
    s_->tokens.pop_back();
    s_->interest.pop_back();
    s_->armed.pop_back();
    s_->index_of_fd[size_t(fd)] = kNone;
}

int Reactor::poll(int timeout_ms, ReactorEvent* out, int capacity) {
    int n = ::poll(s_->fds.data(), nfds_t(s_->fds.size()), timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        throw_errno("poll");
    }
    int count = 0;
    if (n > 0 && s_->fds[0].revents) s_->wakeup.drain();
    // Entries past capacity keep their armed directions: the next poll() reports them.
    for (size_t i = kFixedEntries; i < s_->fds.size() && count < capacity; ++i) {
        short re = s_->fds[i].revents;
        if (re == 0) continue;
        s_->fds[i].revents = 0;
        uint32_t ev = 0;
        if (re & (POLLIN | POLLPRI)) ev |= kReadable;
        if (re & POLLOUT) ev |= kWritable;
        if (re & POLLHUP) ev |= kReadable | kWritable | kHangup;
        if (re & (POLLERR | POLLNVAL)) ev |= kReadable | kWritable | kError;
        out[count++] = {s_->tokens[i], ev};
        s_->armed[i] &= ~ev;
        s_->refresh(int(i), s_->fds[i].fd);
    }
    return count;
}

void Reactor::wake() noexcept { s_->wakeup.notify(); }

}  // namespace weft::detail
