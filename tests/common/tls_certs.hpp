// The TLS tests' certificates, made once per test process by make_test_certs.sh (the
// openssl tool) in a temporary directory that is removed at exit. Paths only: each test
// builds the weft::ssl::Context it needs from them.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

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

}  // namespace weft::test
