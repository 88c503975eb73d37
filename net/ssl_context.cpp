// ssl::Context: an SSL_CTX with Python's defaults and Python's rules about verification,
// plus the errors that carry OpenSSL's reasons.
#include <weft/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/detail/tls_session.hpp"

namespace weft::ssl {

SslError::SslError(const std::string& what, std::string reason)
    : Error(std::errc::protocol_error, what), reason_(std::move(reason)) {}

CertificateError::CertificateError(const std::string& what, long verify_code, std::string verify_message)
    : SslError(what, "certificate verify failed"),
      verify_code_(verify_code),
      verify_message_(std::move(verify_message)) {}

struct Context::State {
    SSL_CTX* ctx = nullptr;
    bool server = false;
    bool check_hostname = false;
    Verify verify = Verify::none;
    // A server's ALPN list in wire form, read by select_alpn. Every session holds a copy
    // of its Context, so this outlives the connections that use it.
    std::vector<unsigned char> alpn;
    ~State() { SSL_CTX_free(ctx); }
};

namespace {

using detail::throw_ssl;

int version_number(Version v) { return v == Version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

void apply_verify(Context::State& s) {
    int mode = SSL_VERIFY_NONE;
    if (s.verify != Verify::none) mode = SSL_VERIFY_PEER;
    if (s.verify == Verify::required && s.server) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(s.ctx, mode, nullptr);
}

std::shared_ptr<Context::State> make_state(bool server) {
    auto s = std::make_shared<Context::State>();
    s->server = server;
    s->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!s->ctx) throw_ssl("SSL_CTX_new");
    // Python's defaults: TLS 1.2 at least, no compression (CRIME), no renegotiation (a
    // peer-driven handshake in the middle of the data).
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    if (server) {
        // Sessions resume (TLS 1.2 IDs, TLS 1.3 tickets); an ID context is required for
        // that once client certificates are asked for.
        static const unsigned char kSessionContext[] = "weft";
        SSL_CTX_set_session_id_context(s->ctx, kSessionContext, sizeof kSessionContext - 1);
    }
    return s;
}

// ALPN callback of a server: the first of our protocols that the client offers.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    auto* ours = static_cast<std::vector<unsigned char>*>(arg);
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, ours->data(), unsigned(ours->size()), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;  // no overlap: go on without ALPN, as Python does
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Context::Context(std::shared_ptr<State> s) : s_(std::move(s)) {}

Context Context::client() {
    auto s = make_state(false);
    s->verify = Verify::required;
    s->check_hostname = true;
    apply_verify(*s);
    SSL_CTX_set_default_verify_paths(s->ctx);  // a machine without a CA store trusts nothing
    return Context(std::move(s));
}

Context Context::server() { return Context(make_state(true)); }

Context Context::unverified_client() {
    auto s = make_state(false);
    apply_verify(*s);
    return Context(std::move(s));
}

void Context::load_verify_locations(const std::string& cafile, const std::string& capath) {
    if (cafile.empty() && capath.empty())
        throw Error(std::errc::invalid_argument, "load_verify_locations: cafile or capath needed");
    if (SSL_CTX_load_verify_locations(s_->ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                      capath.empty() ? nullptr : capath.c_str()) != 1)
        throw_ssl("load_verify_locations('" + cafile + "', '" + capath + "')");
}

void Context::load_default_certs() {
    if (SSL_CTX_set_default_verify_paths(s_->ctx) != 1) throw_ssl("load_default_certs");
}

void Context::load_cert_chain(const std::string& certfile, const std::string& keyfile) {
    const std::string& key = keyfile.empty() ? certfile : keyfile;
    if (SSL_CTX_use_certificate_chain_file(s_->ctx, certfile.c_str()) != 1)
        throw_ssl("load_cert_chain: certificate '" + certfile + "'");
    if (SSL_CTX_use_PrivateKey_file(s_->ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
        throw_ssl("load_cert_chain: private key '" + key + "'");
    if (SSL_CTX_check_private_key(s_->ctx) != 1)
        throw_ssl("load_cert_chain: the key '" + key + "' does not match the certificate '" + certfile + "'");
}

void Context::set_alpn_protocols(const std::vector<std::string>& protocols) {
    std::vector<unsigned char> wire;  // each name preceded by its length
    for (const std::string& p : protocols) {
        if (p.empty() || p.size() > 255)
            throw Error(std::errc::invalid_argument, "set_alpn_protocols: bad protocol name '" + p + "'");
        wire.push_back(static_cast<unsigned char>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
    }
    if (s_->server) {
        s_->alpn = std::move(wire);
        SSL_CTX_set_alpn_select_cb(s_->ctx, select_alpn, &s_->alpn);
    } else if (SSL_CTX_set_alpn_protos(s_->ctx, wire.data(), unsigned(wire.size())) != 0) {
        throw_ssl("set_alpn_protocols");
    }
}

void Context::set_verify_mode(Verify mode) {
    if (mode == Verify::none && s_->check_hostname)
        throw InvalidStateError("set_verify_mode: cannot turn verification off while check_hostname is on");
    s_->verify = mode;
    apply_verify(*s_);
}

Verify Context::verify_mode() const noexcept { return s_->verify; }

void Context::set_check_hostname(bool on) {
    s_->check_hostname = on;
    if (on && s_->verify == Verify::none) set_verify_mode(Verify::required);
}

bool Context::check_hostname() const noexcept { return s_->check_hostname; }

void Context::set_minimum_version(Version v) { SSL_CTX_set_min_proto_version(s_->ctx, version_number(v)); }
void Context::set_maximum_version(Version v) { SSL_CTX_set_max_proto_version(s_->ctx, version_number(v)); }

bool Context::is_server() const noexcept { return s_->server; }
ssl_ctx_st* Context::native_handle() const noexcept { return s_->ctx; }

}  // namespace weft::ssl
