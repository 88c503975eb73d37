// Stream: a read buffer filled through IoWaiter, and a write buffer flushed from the
// fd's writability callback, with drain() waiting on an Event between the water marks.
// After close() with data buffered, the loop owns the state until the flush ends.
#include <weft/stream.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <vector>

#include "core/detail/platform.hpp"
#include "fiber/detail/runtime.hpp"
#include "net/detail/tls_session.hpp"
#include <weft/io_wait.hpp>
#include <weft/loop.hpp>
#include <weft/deadline.hpp>
#include <weft/sync.hpp>

namespace weft {

IncompleteReadError::IncompleteReadError(std::string partial, size_t expected)
    : Error(std::errc::io_error,
            "read_exactly: EOF after " + std::to_string(partial.size()) + " of " +
                std::to_string(expected) + " bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}

LimitOverrunError::LimitOverrunError(const std::string& what, size_t consumed)
    : Error(std::errc::value_too_large, what), consumed_(consumed) {}

// One state per stream. Who keeps it alive: the Stream and any fiber inside one of its
// methods (shared_ptr copies); while a flush runs after close(), also the loop, through
// the callback of `linger_watch` (its slot holds a shared_ptr), with the runtime's list of
// background work for loop close. Loop thread only.
struct Stream::State final : detail::Background {
    Loop& loop;
    int fd;
    StreamOptions options;
    SocketAddress peer, local;
    IoWaiter io;
    bool socket = true;    // false for pipes: read/write instead of recv/send
    std::string in;        // received, not yet consumed
    bool eof = false;
    bool reading = false;  // a fiber is in fill(): available() must leave the fd to it
    bool emptied = false;  // the last read was short: the socket had nothing more then
    // A short read proves the fd empty only for stream sockets and pipes (not for a tty
    // in canonical mode, which returns one line at a time, nor for datagram-like fds).
    bool short_read_empties = false;
    std::string out;             // written, not yet sent
    int write_error = 0;         // errno of a failed background send, raised by the next write
    bool write_closed = false;   // write_eof, close or abort
    bool closing = false;        // close or abort: no more reads, writes or drains
    size_t unsent_at_close = 0;  // out.size() when closing began (for drain's error)
    bool closed = false;         // the fd is closed
    Event drained;               // set while out.size() <= low water
    Event fd_closed;             // set once closed (wait_closed)
    // The flush after close(): `io` is unregistered then, and this watch (writability
    // only: the stream no longer reads) takes over, its callback owning the state.
    IoWatch linger_watch;
    TimerHandle linger_timer;        // options.linger from the close; drops the rest then
    std::weak_ptr<State> weak_self;  // set by close(), for abandon()
    // After start_tls: `in` holds plaintext and `out` ciphertext (the session appends its
    // records there). Declared last: it points at `out` and goes first.
    std::unique_ptr<detail::TlsSession> tls;
    // TLS: the SslError for an EOF without close_notify, raised again by every later read
    // so that a truncated stream never passes for a whole one (writes go on: the peer may
    // only have half-closed).
    std::exception_ptr tls_eof_error;

    State(Loop& l, int f, StreamOptions o, const SocketAddress* accepted_peer)
        : loop(l), fd(f), options(o), io(l, f) {
        struct stat st {};
        socket = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
        int type = 0;
        socklen_t type_len = sizeof type;
        short_read_empties = socket ? ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 &&
                                          type == SOCK_STREAM
                                    : S_ISFIFO(st.st_mode);
        // A pipe cannot ask for MSG_NOSIGNAL: make sure SIGPIPE cannot kill us when its
        // reader goes away, whatever ran (or was reset) before this stream.
        if (!socket) detail::ignore_sigpipe_if_default();
        socklen_t len = SocketAddress::capacity();
        if (::getpeername(fd, peer.get(), &len) == 0)
            peer.set_size(len);
        else if (accepted_peer)  // reset already (ENOTCONN): accept() still knew who it was
            peer = *accepted_peer;
        len = SocketAddress::capacity();
        if (::getsockname(fd, local.get(), &len) == 0) local.set_size(len);
        if (options.nodelay && (local.family() == AF_INET || local.family() == AF_INET6)) {
            int on = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        }
        drained.set();
        io.set_write_hook([this] { flush(); });
    }

    [[noreturn]] void fail(int err, const char* what) const {
        throw SystemError(err, std::string(what) + " (" + (socket ? "peer " + peer.to_string() : "pipe") + ")");
    }
    void check_open(const char* what) const {
        if (closing) throw InvalidStateError(std::string(what) + ": the stream is closed");
        if (!io.active())  // its loop was closed under it: nothing would flush or wake it
            throw InvalidStateError(std::string(what) + ": the stream's event loop is closed");
    }

    // Reads once more into `in`, suspending until something arrives. False at EOF.
    bool fill() {
        check_open("read");
        if (tls) {  // a broken TLS stream stays broken: never a clean EOF
            if (tls_eof_error) std::rethrow_exception(tls_eof_error);
            tls->rethrow_failure();
        }
        if (eof) return false;
        reading = true;
        struct Done {
            bool& reading;
            ~Done() { reading = false; }
        } done{reading};
        if (tls) return fill_tls();
        char* buf = recv_buffer();
        size_t n = recv_some(buf, nullptr, "recv");
        if (n == 0) {
            eof = true;
            return false;
        }
        in.append(buf, n);
        return true;
    }

    // One buffer per thread, not per stream (10k idle streams would hold 640 MB) nor on
    // the fiber's stack (small stacks): nothing suspends between the read and the copy.
    static constexpr size_t kRecvBuffer = 64 * 1024;
    static char* recv_buffer() {
        thread_local char buf[kRecvBuffer];
        return buf;
    }

    // One read from the fd into `buf` (kRecvBuffer bytes), suspending until something
    // arrives; 0 at EOF. False from the wait is a timeout: TimeoutError.
    size_t recv_some(char* buf, const TimePoint* deadline, const char* what) {
        if (emptied) {
            // A short read emptied the socket, and its readiness was forgotten then: wait
            // for news first instead of spending a recv on EAGAIN (one syscall less per
            // request-response). The wait returns at once if anything arrived since.
            emptied = false;
            wait_readable(deadline, what);
        }
        for (;;) {
            ssize_t n = recv_now(buf, what);
            if (n >= 0) return size_t(n);
            wait_readable(deadline, what);
        }
    }

    // One read from the fd without waiting: the bytes, 0 at EOF, -1 if it has nothing now
    // (its readiness is forgotten then).
    ssize_t recv_now(char* buf, const char* what) {
        for (;;) {
            ssize_t n = socket ? ::recv(fd, buf, kRecvBuffer, 0) : ::read(fd, buf, kRecvBuffer);
            if (n > 0) {
                emptied = false;
                // Hang-up and error are reported once: with either pending, the next read
                // must go to the socket to see them.
                if (short_read_empties && size_t(n) < kRecvBuffer && !(io.ready() & (kHangup | kError))) {
                    io.clear(kReadable);
                    emptied = true;
                }
                return n;
            }
            if (n == 0) return 0;
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) fail(errno, what);
            io.clear(kReadable);
            return -1;
        }
    }

    // Stream::available: fill() without waiting, taking at most one read of the fd.
    size_t available() {
        if (!in.empty()) return in.size();
        check_open("available");
        if (reading) throw InvalidStateError("available: another fiber is waiting in a read");
        if (tls) {
            if (tls_eof_error) std::rethrow_exception(tls_eof_error);
            tls->rethrow_failure();
            if (!tls->handshake_done())
                throw InvalidStateError("available: the TLS handshake is still running");
        }
        if (eof) return 0;
        if (tls) return available_tls();
        char* buf = recv_buffer();
        ssize_t n = recv_now(buf, "recv");
        if (n == 0) eof = true;
        if (n > 0) in.append(buf, size_t(n));
        return in.size();
    }

    // Records that came behind the handshake (or whole ones a read left) are decrypted
    // first; the fd is read only if they give nothing.
    size_t available_tls() {
        for (bool fed = false;; fed = true) {
            detail::TlsSession::ReadResult r = tls->read(in);
            if (!out.empty()) flush();  // reading may call for an answer (a key update)
            if (r == detail::TlsSession::ReadResult::closed) eof = true;
            if (!in.empty() || eof || fed) return in.size();
            char* buf = recv_buffer();
            ssize_t n = recv_now(buf, "recv");
            if (n < 0) return 0;
            if (n == 0) {
                eof = true;
                tls_eof_error = unexpected_eof();
                std::rethrow_exception(tls_eof_error);
            }
            tls->feed(buf, size_t(n));
        }
    }

    std::exception_ptr unexpected_eof() const {
        return std::make_exception_ptr(
            ssl::SslError(tls_who() + ": the peer closed the connection without close_notify: "
                                      "unexpected eof while reading",
                          "unexpected eof while reading"));
    }

    void wait_readable(const TimePoint* deadline, const char* what) {
        if (!io.wait(kReadable, deadline))
            throw TimeoutError(std::string(what) + ": timed out (peer " + peer.to_string() + ")");
        check_open("read");
    }

    // TLS: decrypts what was received; reads from the fd only when a whole record is not
    // there yet. An EOF without close_notify is an error (see Stream::start_tls).
    bool fill_tls() {
        for (;;) {
            size_t before = in.size();
            detail::TlsSession::ReadResult r = tls->read(in);
            if (!out.empty()) flush();  // reading may call for an answer (a key update)
            if (in.size() > before) return true;
            if (r == detail::TlsSession::ReadResult::closed) {
                eof = true;
                return false;
            }
            char* buf = recv_buffer();
            size_t n = recv_some(buf, nullptr, "recv");
            if (n == 0) {
                eof = true;
                tls_eof_error = unexpected_eof();
                std::rethrow_exception(tls_eof_error);
            }
            tls->feed(buf, n);
        }
    }

    // "TLS with 127.0.0.1:443 (host 'localhost')": the start of every TLS error message.
    std::string tls_who() const { return "TLS with " + tls->peer_description(); }

    // "127.0.0.1:443 (host 'localhost')": made once, used only in messages.
    std::string describe_tls_peer() const {
        std::string who = socket ? peer.to_string() : std::string("pipe");
        if (!tls->server_hostname().empty()) who += " (host '" + tls->server_hostname() + "')";
        return who;
    }

    // The handshake, to its end or until `deadline`. On any failure the caller closes.
    void handshake(const TimePoint* deadline) {
        for (;;) {
            bool done = tls->handshake();
            flush();  // a flight of ours, or an alert; what the fd does not take the loop sends
            if (write_error) fail(write_error, "send (TLS handshake)");
            if (done) return;
            char* buf = recv_buffer();
            size_t n = recv_some(buf, deadline, "TLS handshake");
            if (n == 0)  // asyncio: ConnectionResetError
                throw SystemError(ECONNRESET, "TLS handshake with " + tls->peer_description() +
                                                  ": the peer closed the connection");
            tls->feed(buf, n);
        }
    }

    // After EAGAIN: the watch in charge reports writability again when room comes back.
    void forget_writable() noexcept {
        if (linger_watch.active())
            linger_watch.clear_ready(kWritable | kError);
        else if (io.active())
            io.clear(kWritable);
    }

    // Sends what it can without suspending; called by write() and by the loop when the
    // socket becomes writable again. Never throws: errors are kept for the next write.
    void flush() noexcept {
        while (!out.empty() && !write_error && !closed) {
            // write(2) on a pipe: SIGPIPE is ignored (see State()).
            ssize_t n = socket ? ::send(fd, out.data(), out.size(), detail::nosignal_send_flags())
                               : ::write(fd, out.data(), out.size());
            if (n > 0) {
                out.erase(0, size_t(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                forget_writable();
                break;
            }
            write_error = n < 0 ? errno : EPIPE;
            out.clear();
        }
        if (out.size() <= options.low_water || write_error) drained.set();
    }

    // With nothing buffered: one sendmsg / writev of the parts straight from the caller's
    // memory (at most kMaxParts of them). Returns the bytes sent; *blocked when the fd was
    // full. A failure is kept in write_error, as flush() keeps it.
    static constexpr size_t kMaxParts = 64;  // 1 KiB of iovecs on a (small) fiber stack
    size_t send_direct(const std::string_view* parts, size_t count, bool* blocked) noexcept {
        iovec iov[kMaxParts];
        size_t n_iov = 0;
        for (size_t i = 0; i < count && n_iov < kMaxParts; ++i)
            if (!parts[i].empty())
                iov[n_iov++] = {const_cast<char*>(parts[i].data()), parts[i].size()};
        if (n_iov == 0) return 0;
        for (;;) {
            ssize_t n;
            if (socket) {
                msghdr msg{};
                msg.msg_iov = iov;
                msg.msg_iovlen = decltype(msg.msg_iovlen)(n_iov);
                n = ::sendmsg(fd, &msg, detail::nosignal_send_flags());
            } else {
                n = ::writev(fd, iov, int(n_iov));  // SIGPIPE ignored: see State()
            }
            if (n >= 0) return size_t(n);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                io.clear(kWritable);
                *blocked = true;
            } else {
                write_error = errno;
            }
            return 0;
        }
    }

    // write / writev: the parts leave in order. Only what the fd did not take is copied
    // into `out`, for the loop to flush when the fd turns writable.
    void write_parts(const char* what, const std::string_view* parts, size_t count) {
        check_open(what);
        if (write_closed)
            throw InvalidStateError(std::string(what) + ": the write side is shut (write_eof)");
        if (write_error) fail(write_error, "send");
        if (tls) return write_tls(what, parts, count);
        size_t skip = 0;  // bytes of the parts already sent
        bool blocked = false;
        if (out.empty()) {
            skip = send_direct(parts, count, &blocked);
            if (write_error) {  // dropped, as flush() drops the buffer; the next write raises
                drained.set();
                return;
            }
        }
        bool appended = false;
        for (size_t i = 0; i < count; ++i) {
            std::string_view p = parts[i];
            if (skip >= p.size()) {
                skip -= p.size();
                continue;
            }
            out.append(p.substr(skip));
            skip = 0;
            appended = true;
        }
        // After a partial send the fd may still have room (a pipe takes part of a large
        // write): flush() goes on until EAGAIN, so the loop is woken when room comes back.
        if (appended && !blocked) flush();
        if (out.size() > options.high_water) drained.clear();
    }

    // TLS: the parts become records in `out` (small parts gathered into one record, as
    // writev gathers them into one segment), which flush() sends.
    void write_tls(const char* what, const std::string_view* parts, size_t count) {
        if (!tls->handshake_done())
            throw InvalidStateError(std::string(what) + ": the TLS handshake is still running");
        thread_local std::string gather;
        size_t total = 0;
        for (size_t i = 0; i < count; ++i) total += parts[i].size();
        if (count > 1 && total <= 16 * 1024) {
            gather.clear();
            for (size_t i = 0; i < count; ++i) gather.append(parts[i]);
            if (!gather.empty()) tls->write(gather.data(), gather.size());
        } else {
            for (size_t i = 0; i < count; ++i)
                if (!parts[i].empty()) tls->write(parts[i].data(), parts[i].size());
        }
        flush();
        if (out.size() > options.high_water) drained.clear();
    }

    // Closes the fd now (what is buffered is left unsent) and wakes whoever waits.
    void close_now() noexcept {
        if (closed) return;
        closed = closing = write_closed = true;
        linger_timer.cancel();
        loop_runtime_unlink();
        io.reset();
        // Unregistered before the fd closes, so its number is free for reuse. In the
        // watch's own callback the loop keeps that callback (and so this state) alive
        // until it returns; the callers elsewhere hold a reference of their own.
        linger_watch.reset();
        ::close(fd);
        drained.set();
        fd_closed.set();
    }

    // Stops the writing side for good; false if closing already. `unsent_at_close` tells
    // a drain woken by this what was still unsent at that moment.
    bool begin_closing() noexcept {
        if (closing) return false;
        closing = write_closed = true;
        unsent_at_close = out.size();
        drained.set();  // a drain in progress wakes and raises (see drain)
        return true;
    }

    // close(): flush in the background, then close (see the header). `self` is this
    // state: the loop keeps a copy of it until the flush ends.
    void close(const std::shared_ptr<State>& self) noexcept {
        if (closed) return;
        // close_notify goes behind what is buffered (write_eof may have sent it already).
        if (tls && !closing) tls->shutdown();
        if (!begin_closing()) return;
        weak_self = self;
        // The loop is gone (nothing would flush), or there is nothing (left) to send.
        if (!io.active() || write_error) return close_now();
        flush();
        if (out.empty() || write_error) return close_now();
        if (options.linger <= Duration::zero()) return abort();
        try {
            io.reset();  // wakes a reader (it sees `closing`) and stops reading
            // Registered anew with a callback that owns the state. Registering reports the
            // fd if it is writable already, so room made since the flush above is not missed.
            linger_watch = IoWatch(loop, fd, kWritable, [self](uint32_t) {
                self->flush();
                if (self->out.empty() || self->write_error) self->close_now();
            });
            const TimePoint now = loop.time();
            if (options.linger < TimePoint::max() - now) {  // else: no limit
                std::weak_ptr<State> weak = self;
                linger_timer = loop.call_at(now + options.linger, [weak] {
                    if (auto s = weak.lock()) s->abort();  // `s` outlives the watch's copy
                });
            }
            detail::FiberRuntime::of(loop).link(this);
        } catch (...) {  // no memory, or the loop is closing: the data cannot wait
            abort();
        }
    }

    // abort(): drops what is buffered and closes now, resetting a TCP connection.
    void abort() noexcept {
        begin_closing();
        std::string().swap(out);
        if (closed) return;
        if (local.family() == AF_INET || local.family() == AF_INET6) {
            linger l{};
            l.l_onoff = 1;
            l.l_linger = 0;  // close(2) sends RST and discards what the kernel still holds
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close_now();
    }

    // Loop close with the flush still running: what is left is lost. The watch's copy of
    // the state goes in close_now; `keep` may be the last one, so nothing follows it.
    void abandon() noexcept override {
        std::shared_ptr<State> keep = weak_self.lock();
        std::string().swap(out);
        close_now();
    }

    void loop_runtime_unlink() noexcept {
        if (linked()) detail::FiberRuntime::of(loop).unlink(this);
    }

    // A safety net: every way out (close_now after close() or abort(), the loop's
    // abandon()) has closed the fd before the last reference goes.
    ~State() {
        if (!closed) close_now();
    }
};

Stream::Stream(Loop& loop, int fd, StreamOptions options) {
    try {
        s_ = std::make_shared<State>(loop, fd, options, nullptr);
    } catch (...) {
        ::close(fd);
        throw;
    }
}

Stream::Stream(Loop& loop, int fd, const SocketAddress& peer, StreamOptions options) {
    try {
        s_ = std::make_shared<State>(loop, fd, options, &peer);
    } catch (...) {
        ::close(fd);
        throw;
    }
}

Stream::Stream(Stream&&) noexcept = default;

namespace {
// A moved-from Stream has no state: its I/O calls throw this, the rest are no-ops.
[[noreturn]] void throw_moved_from(const char* what) {
    throw InvalidStateError(std::string("Stream::") + what + ": the stream was moved from");
}
const SocketAddress kNoAddress;
}  // namespace

Stream& Stream::operator=(Stream&& other) noexcept {
    if (this != &other) {
        if (s_) s_->close(s_);
        s_ = std::move(other.s_);
    }
    return *this;
}

Stream::~Stream() {
    if (!s_) return;
    std::string().swap(s_->in);  // nobody can read it now, however long the flush takes
    s_->close(s_);
}

std::string Stream::read(size_t n) {
    if (!s_) throw_moved_from("read");
    if (n == 0) return {};  // asyncio: read(0) is b'' at once, it does not wait
    auto keep = s_;
    if (s_->in.empty() && !s_->fill()) return {};
    size_t take = std::min(n, s_->in.size());
    std::string out = s_->in.substr(0, take);
    s_->in.erase(0, take);
    return out;
}

std::string Stream::read_all() {
    if (!s_) throw_moved_from("read_all");
    auto keep = s_;
    while (s_->fill()) {
    }
    return std::exchange(s_->in, std::string());
}

std::string Stream::read_exactly(size_t n) {
    if (!s_) throw_moved_from("read_exactly");
    auto keep = s_;
    while (s_->in.size() < n)
        if (!s_->fill()) throw IncompleteReadError(std::exchange(s_->in, std::string()), n);
    std::string out = s_->in.substr(0, n);
    s_->in.erase(0, n);
    return out;
}

std::string Stream::read_until(std::string_view sep) {
    if (!s_) throw_moved_from("read_until");
    if (sep.empty())
        throw Error(std::errc::invalid_argument, "read_until: empty separator");
    auto keep = s_;
    size_t searched = 0;
    for (;;) {
        size_t at = s_->in.find(sep, searched);
        if (at != std::string::npos) {
            size_t end = at + sep.size();
            if (end > s_->options.limit)
                throw LimitOverrunError("read_until: separator found beyond the limit", at);
            std::string out = s_->in.substr(0, end);
            s_->in.erase(0, end);
            return out;
        }
        if (s_->in.size() > s_->options.limit)
            throw LimitOverrunError("read_until: separator not found within the limit of " +
                                        std::to_string(s_->options.limit) + " bytes",
                                    s_->in.size());
        searched = s_->in.size() >= sep.size() ? s_->in.size() - sep.size() + 1 : 0;
        if (!s_->fill()) throw IncompleteReadError(std::exchange(s_->in, std::string()), 0);
    }
}

std::string Stream::read_line() {
    try {
        return read_until("\n");
    } catch (const IncompleteReadError& e) {
        return e.partial();  // asyncio: at EOF, the partial line (maybe empty)
    } catch (const LimitOverrunError&) {
        // asyncio's readline: drop the over-long line (through its '\n' if it arrived), so
        // a caller that catches this and goes on does not hit it again.
        size_t at = s_->in.find('\n');
        s_->in.erase(0, at == std::string::npos ? std::string::npos : at + 1);
        throw;
    }
}

bool Stream::at_eof() const noexcept { return !s_ || (s_->eof && s_->in.empty()); }

size_t Stream::available() {
    if (!s_) throw_moved_from("available");
    return s_->available();
}

void Stream::write(std::string_view data) {
    if (!s_) throw_moved_from("write");
    s_->write_parts("write", &data, 1);
}

void Stream::writev(std::initializer_list<std::string_view> parts) {
    if (!s_) throw_moved_from("writev");
    s_->write_parts("writev", parts.begin(), parts.size());
}

void Stream::drain() {
    if (!s_) throw_moved_from("drain");
    s_->check_open("drain");
    auto keep = s_;
    if (s_->write_error) s_->fail(s_->write_error, "send");
    if (s_->out.size() <= s_->options.high_water) return;
    while (s_->out.size() > s_->options.low_water && !s_->write_error && !s_->closing) {
        s_->drained.clear();
        s_->flush();
        if (s_->out.size() <= s_->options.low_water) break;
        s_->drained.wait();
    }
    // Another fiber closed, aborted or destroyed the stream while we waited, with data
    // unsent: returning normally would tell the caller that it had been sent (close() may
    // yet send it, abort() drops it; either way this drain did not see it go).
    if (s_->closing && s_->unsent_at_close > 0)
        throw InvalidStateError("drain: the stream was closed with " +
                                std::to_string(s_->unsent_at_close) + " bytes unsent");
    if (s_->write_error) s_->fail(s_->write_error, "send");
}

namespace {
// Drains to empty: drain() with both water marks at 0, restored on every way out.
void flush_all(Stream& stream, StreamOptions& options) {
    struct Restore {
        StreamOptions& o;
        size_t high, low;
        ~Restore() {
            o.high_water = high;
            o.low_water = low;
        }
    } restore{options, options.high_water, options.low_water};
    options.high_water = options.low_water = 0;
    stream.drain();
}
}  // namespace

void Stream::write_eof() {
    if (!s_) throw_moved_from("write_eof");
    if (s_->write_closed) return;
    s_->check_open("write_eof");
    auto keep = s_;
    flush_all(*this, s_->options);  // everything goes out before the write side shuts
    if (s_->tls) {  // TLS's half-close is close_notify, which must be sent before the FIN
        s_->tls->shutdown();
        flush_all(*this, s_->options);
    }
    s_->write_closed = true;
    if (!s_->socket) {  // a pipe has one direction: its EOF is closing it
        s_->close_now();
        return;
    }
    if (::shutdown(s_->fd, SHUT_WR) < 0 && errno != ENOTCONN) s_->fail(errno, "shutdown(SHUT_WR)");
}

void Stream::close() {
    if (s_) s_->close(s_);
}
void Stream::abort() {
    if (s_) s_->abort();
}

void Stream::wait_closed() {
    if (!s_) return;
    auto keep = s_;
    s_->close(s_);
    s_->fd_closed.wait();  // the flush's end: sent, failed, timed out or abandoned
}

void Stream::start_tls(const ssl::Context& context, TlsOptions options) {
    if (!s_) throw_moved_from("start_tls");
    s_->check_open("start_tls");
    if (s_->tls) throw InvalidStateError("start_tls: the stream is TLS already");
    if (s_->write_closed) throw InvalidStateError("start_tls: the write side is shut (write_eof)");
    auto keep = s_;
    flush_all(*this, s_->options);  // what was written in clear goes first, in clear
    s_->tls = std::make_unique<detail::TlsSession>(context, options.server_side, options.server_hostname, s_->out);
    s_->tls->set_peer_description(s_->describe_tls_peer());
    const TimePoint deadline = deadline_after(options.handshake_timeout, s_->loop.time());
    try {
        s_->handshake(&deadline);
    } catch (...) {
        // asyncio closes the transport when the handshake fails. The alert OpenSSL wrote
        // (if any) is offered to the socket once; nothing more is sent.
        s_->flush();
        std::string().swap(s_->out);
        s_->close_now();
        throw;
    }
}

bool Stream::is_tls() const noexcept { return s_ && s_->tls; }
std::string Stream::tls_version() const { return is_tls() ? s_->tls->version() : std::string(); }
std::string Stream::tls_cipher() const { return is_tls() ? s_->tls->cipher() : std::string(); }
std::string Stream::selected_alpn_protocol() const { return is_tls() ? s_->tls->alpn_protocol() : std::string(); }
bool Stream::tls_session_reused() const noexcept { return is_tls() && s_->tls->session_reused(); }

bool Stream::is_closing() const noexcept { return !s_ || s_->closing || s_->write_closed; }
size_t Stream::buffered() const noexcept { return s_ ? s_->out.size() : 0; }
const SocketAddress& Stream::peer_address() const noexcept { return s_ ? s_->peer : kNoAddress; }
const SocketAddress& Stream::local_address() const noexcept { return s_ ? s_->local : kNoAddress; }
int Stream::fd() const noexcept { return s_ ? s_->fd : -1; }

}  // namespace weft
