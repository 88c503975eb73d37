// Stream: a connected socket with asyncio's StreamReader and StreamWriter in one object,
// written for straight-line fiber code. Reads suspend the calling fiber until data
// arrives; writes are buffered and flushed by the loop in the background, and drain()
// suspends while the buffer is above its high-water mark, so a fast writer to a slow
// reader does not grow memory without bound. Nothing written is lost on close(): the loop
// goes on flushing after it (and after the Stream is gone), for up to the linger time.
// Errors are SystemError with errno and the peer's address. Loop thread only; one reading
// and one writing fiber at a time.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include <weft/address.hpp>
#include <weft/error.hpp>
#include <weft/handle.hpp>
#include <weft/ssl.hpp>

namespace weft {

class Loop;

// read_exactly hit EOF first: partial() is what arrived (asyncio.IncompleteReadError).
class IncompleteReadError : public Error {
public:
    IncompleteReadError(std::string partial, size_t expected);
    const std::string& partial() const noexcept { return partial_; }
    size_t expected() const noexcept { return expected_; }

private:
    std::string partial_;
    size_t expected_;
};

// read_until / read_line found no separator within the limit (asyncio.LimitOverrunError).
// The data stays buffered; consumed() is how much was examined.
class LimitOverrunError : public Error {
public:
    LimitOverrunError(const std::string& what, size_t consumed);
    size_t consumed() const noexcept { return consumed_; }

private:
    size_t consumed_;
};

struct StreamOptions {
    size_t limit = 64 * 1024;             // read_until / read_line limit (asyncio's default)
    size_t high_water = 64 * 1024;        // drain() waits while more is buffered...
    size_t low_water = 16 * 1024;         // ...until it is down to this
    bool nodelay = true;                  // TCP_NODELAY on TCP sockets
    // How long the loop goes on flushing after close() (or ~Stream) while the peer does
    // not take the data, counted from the close. When it passes with bytes still unsent,
    // they are dropped as by abort(). Zero or less: close() with bytes unsent is abort();
    // Duration::max() (or anything the clock cannot reach): no limit.
    Duration linger = std::chrono::seconds(30);
};

// Stream::start_tls (asyncio's loop.start_tls / StreamWriter.start_tls); open_connection
// and start_server take the same settings in their options.
struct TlsOptions {
    bool server_side = false;
    // The name sent as SNI and checked against the certificate when the context checks
    // host names (an IP address is checked against the certificate's IP entries and not
    // sent). Empty: open_connection(host, port) uses `host`; elsewhere it is an error for
    // a context that checks host names.
    std::string server_hostname{};
    // The whole handshake (asyncio's ssl_handshake_timeout, 60 s as nginx and asyncio).
    Duration handshake_timeout = std::chrono::seconds(60);
};

class Stream {
public:
    // Adopts a connected, non-blocking socket or pipe end (closing it when done, or at
    // once if the constructor throws). For a pipe (anything but a socket) SIGPIPE is set
    // to SIG_IGN if it is still SIG_DFL, so a write whose reader is gone is EPIPE.
    Stream(Loop& loop, int fd, StreamOptions options = {});
    // The same for a socket accept() returned with `peer`: peer_address() (and the errors)
    // keep naming it even if the connection was reset before getpeername could.
    Stream(Loop& loop, int fd, const SocketAddress& peer, StreamOptions options = {});
    // A moved-from Stream is closed for good: close(), abort() and wait_closed() are no-ops,
    // is_closing() and at_eof() are true, buffered() is 0, fd() is -1, the addresses are
    // empty; reads, writes, drain and write_eof throw InvalidStateError.
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;  // the stream it replaces is close()d
    ~Stream();  // close(): what is buffered is still sent (see close)

    // Up to n bytes: what is buffered, or — if nothing is — what the next read brings.
    // Empty at EOF.
    std::string read(size_t n = 64 * 1024);
    std::string read_all();                    // until EOF
    std::string read_exactly(size_t n);        // IncompleteReadError at an early EOF
    std::string read_line();                   // through '\n', or the rest at EOF
    std::string read_until(std::string_view separator);  // through the separator
    bool at_eof() const noexcept;              // EOF seen and nothing buffered
    // weft's own (asyncio has no such call): how many bytes read() would return now
    // without suspending. With something buffered, that count (the fd is not touched, as
    // read() would not touch it); with nothing, what one read of the fd takes now without
    // waiting, kept for the next read. Over TLS what arrived is decrypted first: a record
    // whose end has not arrived counts as nothing (its start is kept for the next read),
    // and a close_notify is EOF; a session ticket or key update is no data. 0 with at_eof()
    // true: the peer closed; 0 with at_eof() false: nothing has arrived. Never suspends, so
    // it may be called on the loop's thread from a callback as well as from a fiber. Throws
    // what a read would throw at that point: SystemError for a failed read (a reset), over
    // TLS SslError for a broken stream or an EOF without close_notify; InvalidStateError
    // on a closed or moved-from stream, during the TLS handshake, and while another fiber
    // waits in a read with nothing buffered (what this took from the fd would not wake it).
    size_t available();

    // write / writev never suspend. With nothing buffered they send at once, straight from
    // the caller's memory (writev: one sendmsg / writev(2) for all the parts, as one
    // segment where the socket takes it); only what the fd does not take is copied into
    // the buffer, which the loop flushes in the background. A send error is raised by the
    // next write or drain.
    void write(std::string_view data);
    void writev(std::initializer_list<std::string_view> parts);
    // asyncio's drain: returns at once while at most high_water bytes are buffered;
    // otherwise waits until the loop has sent it down to low_water. SystemError if a send
    // failed; InvalidStateError if another fiber closes the stream meanwhile with data
    // still unsent (asyncio raises ConnectionResetError there).
    void drain();
    // write_eof also throws that InvalidStateError; wait_closed does not (it closes anyway).
    void write_eof();                          // flushes, then shuts the write side (half-close)
    // asyncio's transport.close(): returns at once. The stream is closing from then on
    // (writes, drain, and reads beyond what was already received raise InvalidStateError;
    // a fiber waiting in one is woken to do so) and stops reading. If nothing is buffered the fd is closed now. Otherwise
    // the loop keeps the fd and flushes the buffer in the background — whether or not this
    // Stream still exists — and closes it once the buffer is sent, a send fails (the peer
    // is gone), or options.linger passes (the rest is then dropped as by abort()). Closing
    // the loop abandons such a flush: call wait_closed() first to be sure it finished.
    // A no-op on a stream that is closing already.
    void close();
    // asyncio's transport.abort(): closes the fd now and drops what is buffered. On a TCP
    // socket the connection is reset (SO_LINGER 0, as libuv's uv_tcp_close_reset): the
    // peer's next read or write fails with ECONNRESET instead of taking a cut-short stream
    // for a complete one, and what the kernel still held is dropped too. Also ends a
    // flush that close() left running.
    void abort();
    // close(), then waits (in a fiber) until the buffer was flushed and the fd is closed;
    // at most about options.linger. Does not throw for a peer that went away meanwhile.
    void wait_closed();
    bool is_closing() const noexcept;          // close, abort, or write_eof was called

    // Upgrades the connection to TLS in place: runs the handshake (suspending) and from then
    // on every read and write goes through it. Call it with nothing buffered in either
    // direction that belongs to the TLS stream (what was read before stays readable). If
    // the handshake fails it throws SslError / CertificateError naming the peer and
    // OpenSSL's reason, SystemError(ECONNRESET) if the peer closed the connection in the
    // middle of it (asyncio's ConnectionResetError), or TimeoutError after
    // options.handshake_timeout, and the stream is closed. Bad arguments (a client context
    // that checks host names and no server_hostname; a server context on the client side)
    // throw Error(invalid_argument) before anything is sent, leaving the stream as it was,
    // as asyncio does. Over TLS:
    // close() sends close_notify first; write_eof() sends close_notify and shuts the
    // write side (reading goes on, as TLS 1.3 allows; a TLS 1.2 peer may close instead);
    // abort() sends nothing. A peer that closes the connection without close_notify makes
    // the read that meets it raise SslError "unexpected eof while reading" (asyncio's
    // SSLEOFError), after everything received before it was read.
    void start_tls(const ssl::Context& context, TlsOptions options = {});
    bool is_tls() const noexcept;
    std::string tls_version() const;            // "TLSv1.3", "TLSv1.2"; "" without TLS
    std::string tls_cipher() const;             // "TLS_AES_256_GCM_SHA384"
    std::string selected_alpn_protocol() const; // "" if none was agreed
    bool tls_session_reused() const noexcept;   // an abbreviated (resumed) handshake
    size_t buffered() const noexcept;          // bytes written but not yet sent

    const SocketAddress& peer_address() const noexcept;
    const SocketAddress& local_address() const noexcept;
    int fd() const noexcept;

    struct State;

private:
    // Shared: a method that suspends keeps the state alive, so destroying the Stream while
    // another fiber waits in it wakes that fiber (InvalidStateError) instead of freeing
    // memory under it. A flush after close() is kept alive by the loop the same way.
    std::shared_ptr<State> s_;
};

}  // namespace weft
