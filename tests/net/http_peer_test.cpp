// HTTP against third-party peers on loopback: curl (Debian's) against the weft server, and
// the weft client against Python's http.server — the stock one (HTTP/1.0, a file) and a
// small HTTP/1.1 handler serving kept-alive and chunked responses. scripts/install-deps.sh
// installs both; a test whose peer is missing skips with a warning that stands out; every
// peer process is killed and reaped.
#include <weft/weft.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
namespace http = weft::http;

namespace {

constexpr const char* kCurl = "/usr/bin/curl";
constexpr const char* kPython = "/usr/bin/python3";

bool installed(const char* path) { return ::access(path, X_OK) == 0; }

// True, after a warning on stderr that stands out in a test log, when the peer at `path`
// is missing. scripts/install-deps.sh installs both peers (as root); the skip is for
// machines where it could not.
bool missing(const char* path, const char* package) {
    if (installed(path)) return false;
    std::fprintf(stderr,
                 "\n**********************************************************************\n"
                 "*** SKIPPED: %s is not installed, so the weft HTTP code is NOT tested\n"
                 "*** against %s on this machine. Install it as root with\n"
                 "***     scripts/install-deps.sh    (or: apt-get install %s)\n"
                 "**********************************************************************\n\n",
                 path, package, package);
    return true;
}

// Runs a program to completion (20 s at most) and returns its stdout.
std::string run_tool(const std::vector<std::string>& argv, std::string input = {}) {
    auto p = weft::create_subprocess_exec(argv);
    auto [out, err] = p.communicate(std::move(input), 20s);  // on timeout ~Process kills and reaps
    EXPECT_EQ(p.returncode(), 0) << argv[0] << " failed; output: " << out;
    return out;
}

http::Application peer_app() {
    http::Application app;
    app.add_get("/hello", [](http::Request&) { return http::Response::text("hello\n"); });
    app.add_post("/echo", [](http::Request& r) { return http::Response::text(r.read()); });
    app.add_get("/stream", [](http::Request&) {
        return http::Response::streamed([](http::ResponseWriter& w) {
            for (int i = 0; i < 3; ++i) w.write("line " + std::to_string(i) + "\n");
        }, "text/plain");
    });
    return app;
}

// A running Python server; the program prints its port on its first line. Its request
// log goes to a pipe nobody reads (a few lines: far below the pipe's capacity).
class PythonServer {
public:
    explicit PythonServer(std::vector<std::string> argv)
        : p_(weft::create_subprocess_exec(argv, {.pipe_stdin = false, .pipe_stdout = true, .pipe_stderr = true})) {
        std::string line = weft::timeout(10s, [&] { return p_.stdout_pipe()->read_line(); });
        size_t digits = line.find_last_of("0123456789");
        size_t start = line.find_last_not_of("0123456789", digits);
        if (digits == line.npos) throw std::runtime_error("python server said: " + line);
        port_ = uint16_t(std::stoi(line.substr(start + 1, digits - start)));
    }
    ~PythonServer() {
        p_.kill();
        p_.wait();
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }

private:
    weft::Process p_;
    uint16_t port_ = 0;
};

// HTTP/1.1 with keep-alive: "/" answers with the client's port (so reuse shows), /chunked
// sends its body in chunks as it goes, POST echoes a Content-Length body.
constexpr const char* kPythonServer = R"PY(
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                data = ("chunk %d;" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            body = ("port %d" % self.client_address[1]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("port", server.server_address[1], flush=True)
server.serve_forever()
)PY";

}  // namespace

TEST(HttpCurl, GetPostKeepAliveAgainstWeftServer) {
    if (missing(kCurl, "curl")) GTEST_SKIP() << kCurl << " not installed (apt-get install curl)";
    weft::run([] {
        auto server = http::start_http_server(peer_app(), "127.0.0.1", 0);
        std::string base = "http://127.0.0.1:" + std::to_string(server->port());
        // Two URLs in one curl run share a kept-alive connection.
        EXPECT_EQ(run_tool({kCurl, "-sS", "--http1.1", base + "/hello", base + "/hello"}), "hello\nhello\n");
        EXPECT_EQ(server->connections_accepted(), 1u);
        EXPECT_EQ(run_tool({kCurl, "-sS", "-d", "a=1&b=2", base + "/echo"}), "a=1&b=2");
        // A chunked upload from stdin, and one that waits for 100 Continue first. Without
        // it curl would send the body anyway after --expect100-timeout (1 s by default): 30 s
        // here, so that the time shows the 100 Continue came, however long a stalled CI
        // machine makes a passing run take.
        std::string big(200000, 'q');
        EXPECT_EQ(run_tool({kCurl, "-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", base + "/echo"},
                           big).size(),
                  big.size());
        auto started = weft::Clock::now();
        EXPECT_EQ(run_tool({kCurl, "-sS", "-H", "Expect: 100-continue", "--expect100-timeout", "30", "--data-binary",
                            "@-", base + "/echo"},
                           "x=1"),
                  "x=1");
        EXPECT_LT(weft::Clock::now() - started, 10s);
        server->shutdown();
    });
}

TEST(HttpCurl, ChunkedResponseStatusesAndLimits) {
    if (missing(kCurl, "curl")) GTEST_SKIP() << kCurl << " not installed (apt-get install curl)";
    weft::run([] {
        http::HttpServerOptions options;
        options.max_header_size = 2048;
        auto server = http::start_http_server(peer_app(), "127.0.0.1", 0, options);
        std::string base = "http://127.0.0.1:" + std::to_string(server->port());
        std::string out = run_tool({kCurl, "-sS", "-i", base + "/stream"});
        EXPECT_NE(out.find("Transfer-Encoding: chunked"), std::string::npos) << out;
        EXPECT_NE(out.find("\r\n\r\nline 0\nline 1\nline 2\n"), std::string::npos) << out;
        auto code = [&](std::vector<std::string> extra, const std::string& path) {
            std::vector<std::string> argv = {kCurl, "-s", "-o", "/dev/null", "-w", "%{http_code}"};
            argv.insert(argv.end(), extra.begin(), extra.end());
            argv.push_back(base + path);
            return run_tool(argv);
        };
        EXPECT_EQ(code({}, "/nope"), "404");
        EXPECT_EQ(code({"-X", "PUT"}, "/hello"), "405");
        EXPECT_EQ(code({"-I"}, "/hello"), "200");  // HEAD
        EXPECT_EQ(code({"-H", "X-Big: " + std::string(4000, 'b')}, "/hello"), "431");
        EXPECT_EQ(code({}, "/hello"), "200");  // still serving
        server->shutdown();
    });
}

TEST(HttpPython, WeftClientAgainstKeepAliveAndChunkedServer) {
    if (missing(kPython, "python3"))
        GTEST_SKIP() << kPython << " not installed (apt-get install python3)";
    weft::run([] {
        PythonServer py({kPython, "-u", "-c", kPythonServer});
        http::ClientSession session;
        std::string first = session.get(py.url("/")).text();
        EXPECT_EQ(first.rfind("port ", 0), 0u) << first;
        EXPECT_EQ(session.get(py.url("/")).text(), first);  // the same client port: reused
        EXPECT_EQ(session.connections_open(), 1u);

        auto r = session.get(py.url("/chunked"));
        EXPECT_EQ(r.headers().get("Transfer-Encoding").value_or(""), "chunked");
        EXPECT_EQ(r.text(), "chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;");
        EXPECT_EQ(session.get(py.url("/")).text(), first);  // still the same connection

        auto p = session.post(py.url("/"), "abcdef");
        EXPECT_EQ(p.status(), 201);
        EXPECT_EQ(p.text(), "fedcba");
        session.close();
    });
}

TEST(HttpPython, WeftClientAgainstStockHttpServer) {
    if (missing(kPython, "python3"))
        GTEST_SKIP() << kPython << " not installed (apt-get install python3)";
    auto dir = std::filesystem::temp_directory_path() / ("weft-http-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::FILE* f = std::fopen((dir / "file.txt").c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs("served by python\n", f);
        std::fclose(f);
    }
    weft::run([&] {
        PythonServer py({kPython, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir.string(), "0"});
        http::ClientSession session;
        // HTTP/1.0 and Connection: close each time: nothing may be reused, and nothing breaks.
        for (int i = 0; i < 3; ++i) {
            auto r = session.get(py.url("/file.txt"));
            EXPECT_EQ(r.status(), 200);
            EXPECT_EQ(r.text(), "served by python\n");
        }
        EXPECT_EQ(session.connections_open(), 0u);
        EXPECT_EQ(session.get(py.url("/missing")).status(), 404);
        session.close();
    });
    std::filesystem::remove_all(dir);
}
