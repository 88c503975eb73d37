// TlsSession: an SSL object on two BIOs of our own. The output BIO appends records to the
// stream's buffer; the input BIO reads from the caller's receive buffer (no copy into a
// memory BIO first) and keeps only what OpenSSL has not taken when the call returns.
#include "net/detail/tls_session.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

namespace weft::detail {

std::string openssl_reason(unsigned long code) {
    const char* reason = ERR_reason_error_string(code);
    return reason ? reason : "unknown error (" + std::to_string(code) + ")";
}

void throw_ssl(const std::string& what) {
    unsigned long code = ERR_peek_last_error();
    std::string reason = code ? openssl_reason(code) : "unknown error";
    ERR_clear_error();
    throw ssl::SslError(what + ": " + reason, reason);
}

namespace {

int out_write(BIO* bio, const char* data, int size) {
    static_cast<std::string*>(BIO_get_data(bio))->append(data, size_t(size));
    return size;
}

int in_read(BIO* bio, char* data, int size) {
    auto* in = static_cast<TlsSession::Input*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    size_t want = size_t(size), got = 0;
    if (in->saved_pos < in->saved.size()) {
        got = std::min(want, in->saved.size() - in->saved_pos);
        std::memcpy(data, in->saved.data() + in->saved_pos, got);
        in->saved_pos += got;
    }
    if (got < want && in->window_size > 0) {
        size_t n = std::min(want - got, in->window_size);
        std::memcpy(data + got, in->window, n);
        in->window += n;
        in->window_size -= n;
        got += n;
    }
    if (got == 0) {  // nothing yet: "try again", never EOF (the stream sees EOF itself)
        BIO_set_retry_read(bio);
        return -1;
    }
    return int(got);
}

long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
}

// One method per direction, made once (C++ guarantees the initialisation is thread-safe).
const BIO_METHOD* out_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft stream output");
        BIO_meth_set_write(m, out_write);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        return m;
    }();
    return method;
}

const BIO_METHOD* in_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft stream input");
        BIO_meth_set_read(m, in_read);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        return m;
    }();
    return method;
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}


}  // namespace

TlsSession::TlsSession(const ssl::Context& context, bool server_side, const std::string& server_hostname,
                       std::string& out)
    : context_(context), hostname_(server_hostname) {
    if (server_side && !context.is_server())
        throw Error(std::errc::invalid_argument, "start_tls: a server needs a server context (Context::server())");
    if (!server_side && context.is_server())
        throw Error(std::errc::invalid_argument, "start_tls: a client needs a client context (Context::client())");
    if (!server_side && context.check_hostname() && hostname_.empty())
        throw Error(std::errc::invalid_argument,
                    "start_tls: server_hostname is needed when the context checks host names");
    ERR_clear_error();
    ssl_ = SSL_new(context.native_handle());
    if (!ssl_) throw_ssl("SSL_new");
    BIO* in = BIO_new(in_method());
    BIO* wr = BIO_new(out_method());
    if (!in || !wr) {
        BIO_free(in);
        BIO_free(wr);
        SSL_free(ssl_);
        throw_ssl("BIO_new");
    }
    BIO_set_data(in, &input_);
    BIO_set_data(wr, &out);
    SSL_set_bio(ssl_, in, wr);  // the SSL owns both from here
    if (server_side) {
        SSL_set_accept_state(ssl_);
        return;
    }
    SSL_set_connect_state(ssl_);
    if (hostname_.empty()) return;
    bool ip = is_ip_literal(hostname_);
    // SNI carries names only (RFC 6066); an address is checked against the IP entries.
    if (!ip) SSL_set_tlsext_host_name(ssl_, hostname_.c_str());
    if (context.check_hostname()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, hostname_.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, hostname_.c_str(), 0);
        if (ok != 1) {
            SSL_free(ssl_);
            throw_ssl("start_tls: server_hostname '" + hostname_ + "'");
        }
    }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::feed(const char* data, size_t size) noexcept {
    input_.window = data;
    input_.window_size = size;
}

// Whatever OpenSSL did not take from the window must survive the caller's buffer.
void TlsSession::keep_rest() {
    if (input_.saved_pos == input_.saved.size()) {
        input_.saved.clear();
        input_.saved_pos = 0;
    }
    if (input_.window_size > 0) {
        input_.saved.erase(0, input_.saved_pos);
        input_.saved_pos = 0;
        input_.saved.append(input_.window, input_.window_size);
    }
    input_.window = nullptr;
    input_.window_size = 0;
}

void TlsSession::fail(const char* what, int ssl_error) {
    const std::string who = std::string(what) + " with " + peer_;
    failed_ = true;
    keep_rest();
    unsigned long code = ERR_peek_last_error();
    if (ssl_error == SSL_ERROR_SSL && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        ERR_clear_error();
        long verify = SSL_get_verify_result(ssl_);
        std::string message = X509_verify_cert_error_string(verify);
        failure_ = std::make_exception_ptr(
            ssl::CertificateError(who + " failed: certificate verify failed: " + message, verify, message));
        rethrow_failure();
    }
    std::string reason = code                              ? openssl_reason(code)
                         : ssl_error == SSL_ERROR_ZERO_RETURN ? "the peer sent close_notify"
                                                           : "error " + std::to_string(ssl_error);
    ERR_clear_error();
    failure_ = std::make_exception_ptr(ssl::SslError(who + " failed: " + reason, reason));
    rethrow_failure();
    std::terminate();  // not reached: for [[noreturn]]
}

bool TlsSession::handshake() {
    if (done_) return true;
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        done_ = true;
        keep_rest();  // application data may have come right behind the handshake
        return true;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) {
        keep_rest();
        return false;
    }
    fail("TLS handshake", err);
}

TlsSession::ReadResult TlsSession::read(std::string& in) {
    thread_local char plain[16 * 1024];  // one record at most per SSL_read
    rethrow_failure();
    for (;;) {
        ERR_clear_error();
        size_t n = 0;
        if (SSL_read_ex(ssl_, plain, sizeof plain, &n) == 1) {
            in.append(plain, n);
            continue;
        }
        int err = SSL_get_error(ssl_, 0);
        if (err == SSL_ERROR_WANT_READ) {
            keep_rest();
            return ReadResult::more;
        }
        if (err == SSL_ERROR_ZERO_RETURN) {  // close_notify: anything after it is ignored
            input_ = Input{};
            return ReadResult::closed;
        }
        fail("TLS", err);
    }
}

void TlsSession::write(const char* data, size_t size) {
    rethrow_failure();
    ERR_clear_error();
    size_t written = 0;
    // The output BIO takes everything, so one call writes it all (as records of 16 KiB).
    if (SSL_write_ex(ssl_, data, size, &written) != 1 || written != size) {
        failed_ = true;
        throw_ssl("TLS write");
    }
}

void TlsSession::shutdown() noexcept {
    if (!done_ || failed_ || shutdown_sent_) return;
    shutdown_sent_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // 0: sent, the peer's reply not awaited (we close anyway)
    ERR_clear_error();
}

std::string TlsSession::version() const { return SSL_get_version(ssl_); }

std::string TlsSession::cipher() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    return c ? SSL_CIPHER_get_name(c) : "";
}

std::string TlsSession::alpn_protocol() const {
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

bool TlsSession::session_reused() const noexcept { return SSL_session_reused(ssl_) == 1; }

}  // namespace weft::detail
