// Load generator for the echo benchmarks: plain epoll, no weft, so every server (weft,
// its peers and the floor) faces the same client. Each of --conns connections sends
// --size bytes and waits for the echo before sending again. After --warmup seconds it
// measures for --seconds and prints one JSON line: req/s, MB/s, p99 latency, and the
// server process's CPU time per request (its process CPU clock, the figure getrusage
// reports, read before and after the measured window). --tls: the same over TLS, made with
// OpenSSL directly (the certificate checked against --cafile for 127.0.0.1), offering only
// --ciphersuites (TLS 1.3; TLS_AES_128_GCM_SHA256 unless told) so every server negotiates
// the same suite; the JSON line then names the version and suite agreed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// CPU seconds of another process (all its threads, dead ones included), or -1.
double process_cpu_s(pid_t pid) {
    if (pid <= 0) return -1;
    clockid_t clock;
    timespec ts{};
    if (clock_getcpuclockid(pid, &clock) != 0 || clock_gettime(clock, &ts) != 0) return -1;
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;  // --tls only; the socket is then non-blocking after the handshake
    size_t received = 0;
    double sent_at = 0;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "echo_client: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] void die_tls(const char* what) {
    char reason[256] = "no reason";
    if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, reason, sizeof reason);
    std::fprintf(stderr, "echo_client: %s: %s\n", what, reason);
    std::exit(1);
}

// Waits until an SSL call that said WANT_READ / WANT_WRITE can go on; false for other errors.
bool wait_tls(const Conn& c, int rc) {
    int err = SSL_get_error(c.ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
    pollfd p{c.fd, short(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    ::poll(&p, 1, 1000);
    return true;
}

void send_all(const Conn& c, const char* data, size_t size) {
    if (c.ssl) {  // one SSL_write, repeated with the same arguments until it is taken
        int rc;
        while ((rc = SSL_write(c.ssl, data, int(size))) <= 0)
            if (!wait_tls(c, rc)) die_tls("SSL_write");
        return;
    }
    while (size > 0) {
        ssize_t n = ::send(c.fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        data += n;
        size -= size_t(n);
    }
}

// What one readiness event brings: bytes (0 at EOF), or -1 if nothing yet (EAGAIN, or a TLS
// record not complete, or only a TLS 1.3 session ticket). One SSL_read is enough with
// level-triggered epoll: without read-ahead OpenSSL takes no more than the record it
// decrypts from the socket, so a next record still makes the socket readable.
ssize_t receive(const Conn& c, char* buf, size_t size) {
    if (!c.ssl) {
        ssize_t r = ::recv(c.fd, buf, size, MSG_DONTWAIT);
        if (r < 0 && errno != EAGAIN && errno != EINTR) die("recv");
        return r;
    }
    ssize_t total = 0;
    do {
        int r = SSL_read(c.ssl, buf + total, int(size - size_t(total)));
        if (r > 0) {
            total += r;
            continue;
        }
        int err = SSL_get_error(c.ssl, r);
        if (err == SSL_ERROR_ZERO_RETURN) return total;
        if (err != SSL_ERROR_WANT_READ) die_tls("SSL_read");
        return total > 0 ? total : -1;
    } while (SSL_pending(c.ssl) > 0 && size_t(total) < size);
    return total;
}

SSL_CTX* client_context(const char* cafile, const char* ciphersuites) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, cafile, nullptr) != 1) die_tls("--cafile");
    if (SSL_CTX_set_ciphersuites(ctx, ciphersuites) != 1) die_tls("--ciphersuites");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    return ctx;
}

// The handshake, blocking; afterwards the socket turns non-blocking for the epoll loop.
void start_tls(Conn& c, SSL_CTX* ctx) {
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl), "127.0.0.1");
    if (SSL_connect(c.ssl) != 1) die_tls("TLS handshake");
    ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0, conns = 1;
    size_t size = 64;
    double seconds = 2, warmup = 0.3;
    pid_t server = 0;
    const char* cafile = nullptr;
    const char* ciphersuites = "TLS_AES_128_GCM_SHA256";
    for (int i = 1; i < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--tls") {  // the one flag without a value
            --i;
            cafile = cafile ? cafile : "";
            continue;
        }
        const char* v = i + 1 < argc ? argv[i + 1] : "";
        if (k == "--port") port = std::atoi(v);
        else if (k == "--conns") conns = std::atoi(v);
        else if (k == "--size") size = size_t(std::atol(v));
        else if (k == "--seconds") seconds = std::atof(v);
        else if (k == "--warmup") warmup = std::atof(v);
        else if (k == "--server-pid") server = pid_t(std::atoi(v));
        else if (k == "--cafile") cafile = v;
        else if (k == "--ciphersuites") ciphersuites = v;
        else {
            std::fprintf(stderr,
                         "usage: echo_client --port P [--conns N --size B --seconds S --warmup S\n"
                         "                   --server-pid PID --tls --cafile CA.pem --ciphersuites LIST]\n");
            return 2;
        }
    }
    if (cafile && !*cafile) {
        std::fprintf(stderr, "echo_client: --tls needs --cafile\n");
        return 2;
    }
    SSL_CTX* tls = cafile ? client_context(cafile, ciphersuites) : nullptr;

    int ep = ::epoll_create1(0);
    std::vector<Conn> all(static_cast<size_t>(conns));
    for (int i = 0; i < conns; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int tries = 0;
        while (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            if (++tries > 200) die("connect");  // the server may still be starting
            ::close(fd);
            fd = ::socket(AF_INET, SOCK_STREAM, 0);
            ::usleep(10'000);
        }
        int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        all[size_t(i)].fd = fd;
        if (tls) start_tls(all[size_t(i)], tls);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = uint32_t(i);
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }

    std::string message(size, 'm');
    std::vector<char> buf(std::max<size_t>(size, 64 * 1024));
    std::vector<float> latencies_us;
    latencies_us.reserve(1 << 20);
    const double start = now_s(), measure_from = start + warmup, until = measure_from + seconds;
    bool measuring = false;
    double cpu_before = -1, t_begin = 0;
    int64_t requests = 0;
    for (auto& c : all) {
        c.sent_at = now_s();
        send_all(c, message.data(), size);
    }
    epoll_event events[256];
    for (;;) {
        int n = ::epoll_wait(ep, events, 256, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        double t = now_s();
        if (!measuring && t >= measure_from) {
            measuring = true;
            cpu_before = process_cpu_s(server);
            t_begin = t;
            requests = 0;
        }
        if (measuring && t >= until) break;
        for (int i = 0; i < n; ++i) {
            Conn& c = all[events[i].data.u32];
            ssize_t r = receive(c, buf.data(), buf.size());
            if (r == 0) {
                std::fprintf(stderr, "echo_client: server closed a connection\n");
                return 1;
            }
            if (r < 0) continue;
            c.received += size_t(r);
            if (c.received < size) continue;
            c.received = 0;
            if (measuring) {
                ++requests;
                latencies_us.push_back(float((t - c.sent_at) * 1e6));
            }
            c.sent_at = t;
            send_all(c, message.data(), size);
        }
    }
    double elapsed = now_s() - t_begin;
    double cpu_after = process_cpu_s(server);
    std::string agreed;  // "TLSv1.3 TLS_AES_128_GCM_SHA256": what the last connection agreed
    if (tls) {
        SSL* last = all.back().ssl;
        agreed = std::string(SSL_get_version(last)) + " " + SSL_get_cipher_name(last);
    }
    for (auto& c : all) {
        if (c.ssl) SSL_shutdown(c.ssl);  // close_notify, so servers see a clean end
        ::close(c.fd);
    }
    double p99 = 0, p50 = 0;
    if (!latencies_us.empty()) {
        std::sort(latencies_us.begin(), latencies_us.end());
        p99 = latencies_us[latencies_us.size() * 99 / 100];
        p50 = latencies_us[latencies_us.size() / 2];
    }
    double cpu_ns = (cpu_before >= 0 && cpu_after >= 0 && requests > 0)
                        ? (cpu_after - cpu_before) * 1e9 / double(requests) : -1;
    std::printf("{\"requests\": %lld, \"seconds\": %.3f, \"req_per_s\": %.1f, \"mb_per_s\": %.2f, "
                "\"p50_us\": %.2f, \"p99_us\": %.2f, \"server_cpu_ns_per_req\": %.1f, "
                "\"server_cpu_share\": %.3f, \"tls\": \"%s\"}\n",
                (long long)requests, elapsed, double(requests) / elapsed,
                double(requests) * double(size) / elapsed / 1e6, p50, p99, cpu_ns,
                cpu_ns > 0 ? (cpu_after - cpu_before) / elapsed : -1.0, agreed.c_str());
    return 0;
}
