// The TLS tests' certificates, made once per test process by make_test_certs.sh (the
// openssl tool) in a temporary directory that is removed at exit, and the two contexts
// most tests want; a test that needs another builds its weft::ssl::Context from the paths.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <weft/ssl.hpp>

#ifndef WEFT_TEST_CERTS_SCRIPT
#define WEFT_TEST_CERTS_SCRIPT "tests/common/make_test_certs.sh"
#endif

namespace weft::test {

class TestCerts {
public:
    static const TestCerts& get() {
        static TestCerts certs;
        return certs;
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string ca() const { return path("ca.pem"); }
    std::string cert(const std::string& name) const { return path(name + ".pem"); }
    std::string key(const std::string& name) const { return path(name + ".key"); }
    const std::string& dir() const { return dir_; }

    TestCerts(const TestCerts&) = delete;
    ~TestCerts() {
        // Only the process that made them (a forked child exits through here too).
        if (::getpid() == owner_) std::filesystem::remove_all(dir_);
    }

private:
    TestCerts() : owner_(::getpid()) {
        char tmpl[] = "/tmp/weft-test-certs-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        std::string cmd = std::string(WEFT_TEST_CERTS_SCRIPT) + " " + dir_ + " >/dev/null 2>&1";
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("could not make the test certificates: " + cmd);
    }
    std::string dir_;
    pid_t owner_;
};

// A server context with certificate `name` (server.pem / server.key by default).
inline ssl::Context server_context(const std::string& name = "server") {
    ssl::Context ctx = ssl::Context::server();
    ctx.load_cert_chain(TestCerts::get().cert(name), TestCerts::get().key(name));
    return ctx;
}

// A client context as Python's default one, trusting the test CA too.
inline ssl::Context client_context() {
    ssl::Context ctx = ssl::Context::client();
    ctx.load_verify_locations(TestCerts::get().ca());
    return ctx;
}

}  // namespace weft::test
