// Load generator for the echo benchmarks: plain epoll, no weft, so every server (weft,
// its peers and the floor) faces the same client. Each of --conns connections sends
// --size bytes and waits for the echo before sending again. After --warmup seconds it
// measures for --seconds and prints one JSON line: req/s, MB/s, p99 latency, and the
// server process's CPU time per request (its process CPU clock, the figure getrusage
// reports, read before and after the measured window).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
    size_t received = 0;
    double sent_at = 0;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "echo_client: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

void send_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        data += n;
        size -= size_t(n);
    }
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0, conns = 1;
    size_t size = 64;
    double seconds = 2, warmup = 0.3;
    pid_t server = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        const char* v = argv[i + 1];
        if (k == "--port") port = std::atoi(v);
        else if (k == "--conns") conns = std::atoi(v);
        else if (k == "--size") size = size_t(std::atol(v));
        else if (k == "--seconds") seconds = std::atof(v);
        else if (k == "--warmup") warmup = std::atof(v);
        else if (k == "--server-pid") server = pid_t(std::atoi(v));
        else {
            std::fprintf(stderr, "usage: echo_client --port P [--conns N --size B --seconds S --warmup S --server-pid PID]\n");
            return 2;
        }
    }

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
        send_all(c.fd, message.data(), size);
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
            ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (r == 0) {
                std::fprintf(stderr, "echo_client: server closed a connection\n");
                return 1;
            }
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("recv");
            }
            c.received += size_t(r);
            if (c.received < size) continue;
            c.received = 0;
            if (measuring) {
                ++requests;
                latencies_us.push_back(float((t - c.sent_at) * 1e6));
            }
            c.sent_at = t;
            send_all(c.fd, message.data(), size);
        }
    }
    double elapsed = now_s() - t_begin;
    double cpu_after = process_cpu_s(server);
    for (auto& c : all) ::close(c.fd);
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
                "\"server_cpu_share\": %.3f}\n",
                (long long)requests, elapsed, double(requests) / elapsed,
                double(requests) * double(size) / elapsed / 1e6, p50, p99, cpu_ns,
                cpu_ns > 0 ? (cpu_after - cpu_before) / elapsed : -1.0);
    return 0;
}
