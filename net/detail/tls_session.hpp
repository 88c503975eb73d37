// TlsSession: one connection's OpenSSL state between a Stream's buffers. Ciphertext read
// from the socket is handed in with feed() and consumed by the next handshake() or read();
// the records OpenSSL produces are appended straight to the Stream's output buffer by a BIO
// of our own, so they leave through the Stream's ordinary write path (its flush, drain
// and linger) with no copy in between. Nothing here touches the socket or suspends.
#pragma once

#include <cstddef>
#include <exception>
#include <string>

#include <weft/ssl.hpp>

struct ssl_st;

namespace weft::detail {

// OpenSSL's reason string for an error code, "unknown error" if it has none.
std::string openssl_reason(unsigned long code);
// SslError "what: reason" for the last failure on this thread's OpenSSL error queue, which
// it clears.
[[noreturn]] void throw_ssl(const std::string& what);

class TlsSession {
public:
    // `out` is the stream's output buffer, which must outlive the session. Throws
    // weft::Error (invalid_argument) for a client context that checks host names when
    // `server_hostname` is empty, SslError if OpenSSL cannot make the connection.
    TlsSession(const ssl::Context& context, bool server_side, const std::string& server_hostname,
               std::string& out);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Ciphertext from the peer: valid until the next handshake() or read() has run, which
    // take what they need and keep the rest.
    void feed(const char* data, size_t size) noexcept;

    // Who is at the other end ("127.0.0.1:443 (host 'localhost')"), for the messages of
    // the SslError / CertificateError the calls below throw. Set once, before the handshake.
    void set_peer_description(std::string peer) { peer_ = std::move(peer); }
    const std::string& peer_description() const noexcept { return peer_; }

    // Advances the handshake; true once it is complete, false while it needs more from
    // the peer.
    bool handshake();
    bool handshake_done() const noexcept { return done_; }

    enum class ReadResult { more, closed };  // needs more input / close_notify received
    // Appends all the plaintext that the input fed so far decrypts to. Throws SslError.
    ReadResult read(std::string& in);
    // Encrypts into records appended to `out`. Only after the handshake.
    void write(const char* data, size_t size);
    // Appends close_notify to `out`, once; nothing if the handshake did not complete or
    // the connection failed.
    void shutdown() noexcept;
    bool shutdown_sent() const noexcept { return shutdown_sent_; }
    // A fatal failure is raised again by every later read and write, as it was the first
    // time (naming the peer, with OpenSSL's reason): OpenSSL alone would only say
    // "error 5" / "unknown error" then, and a broken connection must not pass for a clean
    // end.
    void rethrow_failure() const {
        if (failure_) std::rethrow_exception(failure_);
    }

    std::string version() const;
    std::string cipher() const;
    std::string alpn_protocol() const;
    bool session_reused() const noexcept;
    const std::string& server_hostname() const noexcept { return hostname_; }

    // What the input BIO reads: a saved remainder first, then the window of the last feed.
    struct Input {
        std::string saved;
        size_t saved_pos = 0;
        const char* window = nullptr;
        size_t window_size = 0;
    };

private:
    void keep_rest();
    [[noreturn]] void fail(const char* what, int ssl_error);

    ssl::Context context_;  // keeps the SSL_CTX and the ALPN list alive
    ssl_st* ssl_ = nullptr;
    Input input_;
    std::string hostname_;
    std::string peer_;
    bool done_ = false;
    bool failed_ = false;
    bool shutdown_sent_ = false;
    std::exception_ptr failure_;  // the first fatal failure: see rethrow_failure
};

}  // namespace weft::detail
