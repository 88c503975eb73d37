// TLS configuration in the shape of Python's ssl.SSLContext, on OpenSSL 3. A Context is
// what open_connection / start_server / Stream::start_tls / the HTTP client take as their
// `ssl` option. Copies share one OpenSSL context (as Python's objects are references):
// a change made through any copy applies to the connections made after it.
//
//     auto ctx = weft::ssl::Context::client();   // ssl.create_default_context()
//     ctx.load_verify_locations("ca.pem");        // a CA of your own, besides the system's
//     Stream s = open_connection("example.org", 443, {.ssl = ctx});
//
// Errors are SslError (ssl.SSLError) with OpenSSL's reason, or CertificateError
// (ssl.SSLCertVerificationError) naming why the peer's certificate was refused.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <weft/error.hpp>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX: weft's public headers do not include OpenSSL's

namespace weft::ssl {

// ssl.SSLError: what failed, with OpenSSL's reason ("wrong version number", "unexpected eof
// while reading", ...) in reason().
class SslError : public Error {
public:
    SslError(const std::string& what, std::string reason);
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string reason_;
};

// ssl.SSLCertVerificationError: the peer's certificate was refused. reason() is
// "certificate verify failed"; verify_message() says why ("unable to get local issuer
// certificate", "certificate has expired", "hostname mismatch"), verify_code() is
// OpenSSL's X509_V_ERR_* number.
class CertificateError : public SslError {
public:
    CertificateError(const std::string& what, long verify_code, std::string verify_message);
    long verify_code() const noexcept { return verify_code_; }
    const std::string& verify_message() const noexcept { return verify_message_; }

private:
    long verify_code_;
    std::string verify_message_;
};

enum class Version { tls1_2, tls1_3 };  // ssl.TLSVersion (older ones are not offered)
enum class Verify { none, optional, required };  // ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED

class Context {
public:
    // ssl.create_default_context(): the system's CA store, the peer's certificate required
    // and its host name checked, SNI sent, TLS 1.2 at least.
    static Context client();
    // ssl.create_default_context(Purpose.CLIENT_AUTH): for a server; clients are not asked
    // for certificates (set_verify_mode to ask). load_cert_chain before serving.
    static Context server();
    // A client context that checks nothing: neither the certificate chain nor the host
    // name (aiohttp's ssl=False). Still encrypted, but open to anyone in the middle.
    static Context unverified_client();

    // CA certificates to trust, from a PEM file and/or a directory hashed by
    // `openssl rehash`; added to what is trusted already. SslError if unreadable.
    void load_verify_locations(const std::string& cafile, const std::string& capath = {});
    // The system's CA store (client() loads it already).
    void load_default_certs();
    // Our certificate chain (PEM, leaf first) and its private key (PEM; the key may sit in
    // certfile too when keyfile is empty). SslError if unreadable or if they do not match.
    void load_cert_chain(const std::string& certfile, const std::string& keyfile = {});
    // ALPN, in order of preference ("h2", "http/1.1"). A server picks the first of its own
    // list that the client offers.
    void set_alpn_protocols(const std::vector<std::string>& protocols);

    // Python's rules: turning verification off while check_hostname is on is an error
    // (InvalidStateError); turning check_hostname on turns verification to required.
    void set_verify_mode(Verify mode);
    Verify verify_mode() const noexcept;
    void set_check_hostname(bool on);
    bool check_hostname() const noexcept;
    void set_minimum_version(Version v);
    void set_maximum_version(Version v);

    bool is_server() const noexcept;
    // The OpenSSL context, for settings this class does not wrap (ciphers, curves, ...).
    ssl_ctx_st* native_handle() const noexcept;

    struct State;

private:
    explicit Context(std::shared_ptr<State> s);
    std::shared_ptr<State> s_;
};

}  // namespace weft::ssl
