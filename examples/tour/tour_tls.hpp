// The tour's https: the seeds fetch https:// sites, so the fetch examples serve their
// stand-in pages over https. tests/examples/tour_test.sh makes a throwaway CA and a
// localhost certificate for the run (tests/common/make_test_certs.sh), names their
// directory in WEFT_TOUR_CERTS for the servers, and sets SSL_CERT_FILE to the CA, which
// OpenSSL's default CA store reads (as Python's ssl does): so a plain ClientSession(), as in
// the seeds, verifies the pages' certificate. Run by hand without it, they serve http://.
#pragma once

#include <weft/weft.hpp>

#include <cstdlib>
#include <string>

#include "tour.hpp"

namespace tour {

struct Web {
    std::string scheme = "http";
    weft::http::HttpServerOptions server_options;  // ssl set for https
};

inline Web web() {
    Web w;
    const char* dir = std::getenv("WEFT_TOUR_CERTS");
    if (!dir || !*dir) {
        varying("WEFT_TOUR_CERTS is not set: serving http:// (tests/examples/tour_test.sh sets it)");
        return w;
    }
    auto ctx = weft::ssl::Context::server();
    ctx.load_cert_chain(std::string(dir) + "/server.pem", std::string(dir) + "/server.key");
    w.scheme = "https";
    w.server_options.ssl = ctx;
    return w;
}

}  // namespace tour
