// Echo over loopback: weft's server against a plain epoll echo server (the floor), both
// driven by the same weft client from another thread. Besides req/s, each reports the
// server thread's CPU time per request — on 2 cores the client is often the bottleneck,
// and CPU per request is what tells servers apart.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <memory>

#include <benchmark/benchmark.h>
#include <weft/weft.hpp>

namespace {

double thread_cpu_seconds(pthread_t t) {
    clockid_t id;
    timespec ts{};
    if (pthread_getcpuclockid(t, &id) != 0 || clock_gettime(id, &ts) != 0) return 0;
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// A weft echo server on its own LoopThread.
struct WeftServer {
    weft::LoopThread thread;
    uint16_t port = 0;
    pthread_t handle{};
    std::unique_ptr<weft::Server> server;
    WeftServer() {
        thread.start();
        auto ready = weft::run_coroutine_threadsafe(thread, [this] {
            handle = pthread_self();
            server = weft::start_server(
                [](weft::Stream& s) {
                    for (;;) {
                        std::string chunk = s.read(64 * 1024);
                        if (chunk.empty()) return;
                        s.write(chunk);
                        s.drain();
                    }
                },
                "127.0.0.1", 0);
            port = server->port();
        });
        ready.result();
    }
    ~WeftServer() {
        weft::run_coroutine_threadsafe(thread, [this] {
            server->close();
            server->wait_closed();
            server.reset();
        }).result();
    }
};

// The floor: a plain edge-triggered epoll echo server, no library at all.
struct EpollServer {
    int listener = -1, ep = -1, stop_fd[2] = {-1, -1};
    uint16_t port = 0;
    std::thread thread;
    EpollServer() {
        listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(listener, 128);
        socklen_t len = sizeof a;
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        ep = ::epoll_create1(0);
        ::pipe(stop_fd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = listener;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
        ev.data.fd = stop_fd[0];
        ::epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd[0], &ev);
        thread = std::thread([this] { run(); });
    }
    void run() {
        epoll_event events[64];
        char buf[64 * 1024];
        for (;;) {
            int n = ::epoll_wait(ep, events, 64, -1);
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == stop_fd[0]) return;
                if (fd == listener) {
                    int c;
                    while ((c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
                        int on = 1;
                        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                        epoll_event ev{};
                        ev.events = EPOLLIN | EPOLLET;
                        ev.data.fd = c;
                        ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                    }
                    continue;
                }
                for (;;) {  // echo until EAGAIN (replies are small: the send buffer has room)
                    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        ::send(fd, buf, size_t(r), MSG_NOSIGNAL);
                        continue;
                    }
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) ::close(fd);
                    break;
                }
            }
        }
    }
    ~EpollServer() {
        ::write(stop_fd[1], "x", 1);
        thread.join();
        ::close(listener);
        ::close(ep);
        ::close(stop_fd[0]);
        ::close(stop_fd[1]);
    }
};

// The peer: a Boost.Asio echo server (callbacks, one io_context on one thread).
struct AsioServer {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor{io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    uint16_t port = acceptor.local_endpoint().port();
    std::thread thread;

    struct Session : std::enable_shared_from_this<Session> {
        boost::asio::ip::tcp::socket socket;
        char data[64 * 1024];
        explicit Session(boost::asio::ip::tcp::socket s) : socket(std::move(s)) {
            socket.set_option(boost::asio::ip::tcp::no_delay(true));
        }
        void read() {
            socket.async_read_some(boost::asio::buffer(data), [self = shared_from_this()](auto ec, size_t n) {
                if (ec) return;
                boost::asio::async_write(self->socket, boost::asio::buffer(self->data, n),
                                         [self](auto ec2, size_t) {
                                             if (!ec2) self->read();
                                         });
            });
        }
    };
    void accept() {
        acceptor.async_accept([this](auto ec, boost::asio::ip::tcp::socket s) {
            if (ec) return;
            std::make_shared<Session>(std::move(s))->read();
            accept();
        });
    }
    AsioServer() {
        accept();
        thread = std::thread([this] { io.run(); });
    }
    ~AsioServer() {
        io.stop();
        thread.join();
    }
};

#ifdef WEFT_BENCH_LIBUV
}  // namespace
#include <uv.h>
namespace {

// The libuv peer: an echo server on a uv loop of its own thread (alloc/read/write callbacks).
struct UvServer {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uint16_t port = 0;
    std::thread thread;

    struct Conn {
        uv_tcp_t tcp;
        char buf[64 * 1024];
    };
    struct Write {
        uv_write_t req;
        char* data;
    };
    static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* b) {
        auto* c = static_cast<Conn*>(h->data);
        *b = uv_buf_init(c->buf, sizeof c->buf);
    }
    static void on_close(uv_handle_t* h) { delete static_cast<Conn*>(h->data); }
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
        if (n < 0) {
            uv_close(reinterpret_cast<uv_handle_t*>(s), on_close);
            return;
        }
        if (n == 0) return;
        auto* w = new Write;
        w->data = new char[size_t(n)];
        std::memcpy(w->data, b->base, size_t(n));
        uv_buf_t out = uv_buf_init(w->data, unsigned(n));
        uv_write(&w->req, s, &out, 1, [](uv_write_t* req, int) {
            auto* done = reinterpret_cast<Write*>(req);
            delete[] done->data;
            delete done;
        });
    }
    static void on_connection(uv_stream_t* server, int status) {
        if (status < 0) return;
        auto* c = new Conn;
        uv_tcp_init(server->loop, &c->tcp);
        c->tcp.data = c;
        if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) == 0) {
            uv_tcp_nodelay(&c->tcp, 1);
            uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
        } else {
            uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_close);
        }
    }
    UvServer() {
        uv_loop_init(&loop);
        uv_tcp_init(&loop, &listener);
        sockaddr_in a{};
        uv_ip4_addr("127.0.0.1", 0, &a);
        uv_tcp_bind(&listener, reinterpret_cast<sockaddr*>(&a), 0);
        uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 128, on_connection);
        int len = sizeof a;
        uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        uv_async_init(&loop, &stop, [](uv_async_t* h) {
            uv_walk(h->loop, [](uv_handle_t* handle, void*) {
                if (!uv_is_closing(handle))
                    uv_close(handle, handle->type == UV_TCP && handle->data ? on_close : nullptr);
            }, nullptr);
        });
        thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
    }
    ~UvServer() {
        uv_async_send(&stop);
        thread.join();
        uv_loop_close(&loop);
    }
};
#endif

// `connections` clients each send `size`-byte messages and wait for the echo.
template <class Server>
void ping_pong(benchmark::State& state, Server& server, pthread_t server_thread) {
    const int connections = int(state.range(0));
    const size_t size = size_t(state.range(1));
    const int rounds = size >= 16 * 1024 ? 200 : 2000;
    double cpu_before = thread_cpu_seconds(server_thread);
    int64_t requests = 0;
    std::vector<double> latencies_us;  // connection 0's round trips, for p99
    weft::run([&] {
        std::vector<weft::Stream> streams;
        for (int i = 0; i < connections; ++i) streams.push_back(weft::open_connection("127.0.0.1", server.port));
        std::string message(size, 'm');
        for (auto _ : state) {
            std::vector<weft::Task<void>> clients;
            for (size_t k = 0; k < streams.size(); ++k)
                clients.push_back(weft::spawn([&, k] {
                    weft::Stream& s = streams[k];
                    for (int r = 0; r < rounds; ++r) {
                        auto t0 = weft::Clock::now();
                        s.write(message);
                        s.read_exactly(message.size());
                        if (k == 0)
                            latencies_us.push_back(
                                std::chrono::duration<double, std::micro>(weft::Clock::now() - t0).count());
                    }
                }));
            weft::gather(clients);
            requests += int64_t(connections) * rounds;
        }
    });
    double cpu = thread_cpu_seconds(server_thread) - cpu_before;
    state.SetItemsProcessed(requests);
    state.counters["server_cpu_ns_per_req"] = requests ? cpu * 1e9 / double(requests) : 0;
    if (!latencies_us.empty()) {
        std::sort(latencies_us.begin(), latencies_us.end());
        state.counters["p99_us"] = latencies_us[latencies_us.size() * 99 / 100];
    }
}

}  // namespace

static void BM_EchoPingPong(benchmark::State& state) {
    WeftServer server;
    ping_pong(state, server, server.handle);
}
BENCHMARK(BM_EchoPingPong)->Args({1, 64})->Args({50, 64})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_EchoStream(benchmark::State& state) {
    WeftServer server;
    ping_pong(state, server, server.handle);
}
BENCHMARK(BM_EchoStream)->Args({1, 16 * 1024})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

// The floor, with the same client.
static void BM_EchoPingPong_PlainEpoll(benchmark::State& state) {
    EpollServer server;
    ping_pong(state, server, server.thread.native_handle());
}
BENCHMARK(BM_EchoPingPong_PlainEpoll)->Args({1, 64})->Args({50, 64})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

// Boost.Asio, with the same client.
static void BM_EchoPingPong_Asio(benchmark::State& state) {
    AsioServer server;
    ping_pong(state, server, server.thread.native_handle());
}
BENCHMARK(BM_EchoPingPong_Asio)->Args({1, 64})->Args({50, 64})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_EchoStream_Asio(benchmark::State& state) {
    AsioServer server;
    ping_pong(state, server, server.thread.native_handle());
}
BENCHMARK(BM_EchoStream_Asio)->Args({1, 16 * 1024})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

#ifdef WEFT_BENCH_LIBUV
// libuv, with the same client.
static void BM_EchoPingPong_Libuv(benchmark::State& state) {
    UvServer server;
    ping_pong(state, server, server.thread.native_handle());
}
BENCHMARK(BM_EchoPingPong_Libuv)->Args({1, 64})->Args({50, 64})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_EchoStream_Libuv(benchmark::State& state) {
    UvServer server;
    ping_pong(state, server, server.thread.native_handle());
}
BENCHMARK(BM_EchoStream_Libuv)->Args({1, 16 * 1024})->ArgNames({"conns", "bytes"})
    ->UseRealTime()->Unit(benchmark::kMillisecond);
#endif

BENCHMARK_MAIN();
