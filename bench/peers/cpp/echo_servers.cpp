// C++ echo servers for the process-level echo benchmarks, one per process, each on one
// thread: `epoll` (the floor: edge-triggered epoll, no library), `asio` (Boost.Asio
// callbacks) and `libuv` (when built with WEFT_BENCH_LIBUV). Usage: echo_servers KIND PORT
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#ifdef WEFT_BENCH_LIBUV
#include <uv.h>
#endif

namespace {

void listening(int port) {
    std::printf("listening %d\n", port);
    std::fflush(stdout);
}

int run_epoll(int port) {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int on = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener, 512) != 0) {
        std::perror("bind/listen");
        return 1;
    }
    listening(port);
    int ep = ::epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    static char buf[64 * 1024];
    epoll_event events[256];
    for (;;) {
        int n = ::epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
                    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                    epoll_event cev{};
                    cev.events = EPOLLIN | EPOLLET;
                    cev.data.fd = c;
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            for (;;) {  // until EAGAIN; the client waits for each echo, so sends have room
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

struct AsioSession : std::enable_shared_from_this<AsioSession> {
    boost::asio::ip::tcp::socket socket;
    char data[64 * 1024];
    explicit AsioSession(boost::asio::ip::tcp::socket s) : socket(std::move(s)) {
        socket.set_option(boost::asio::ip::tcp::no_delay(true));
    }
    void read() {
        socket.async_read_some(boost::asio::buffer(data), [self = shared_from_this()](auto ec, size_t n) {
            if (ec) return;
            boost::asio::async_write(self->socket, boost::asio::buffer(self->data, n), [self](auto ec2, size_t) {
                if (!ec2) self->read();
            });
        });
    }
};

void asio_accept(boost::asio::ip::tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](auto ec, boost::asio::ip::tcp::socket s) {
        if (!ec) std::make_shared<AsioSession>(std::move(s))->read();
        asio_accept(acceptor);
    });
}

int run_asio(int port) {
    boost::asio::io_context io(1);  // concurrency hint 1: one thread, as a server per core runs
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), uint16_t(port)});
    listening(port);
    asio_accept(acceptor);
    io.run();
    return 0;
}

#ifdef WEFT_BENCH_LIBUV
struct UvConn {
    uv_tcp_t tcp;
    char buf[64 * 1024];
};
struct UvWrite {
    uv_write_t req;
    char* data;
};

void uv_on_close(uv_handle_t* h) { delete static_cast<UvConn*>(h->data); }

void uv_on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
    if (n < 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(s), uv_on_close);
        return;
    }
    if (n == 0) return;
    // libuv may try the write at once; the copy keeps the read buffer free either way.
    auto* w = new UvWrite;
    w->data = new char[size_t(n)];
    std::memcpy(w->data, b->base, size_t(n));
    uv_buf_t out = uv_buf_init(w->data, unsigned(n));
    uv_write(&w->req, s, &out, 1, [](uv_write_t* req, int) {
        auto* done = reinterpret_cast<UvWrite*>(req);
        delete[] done->data;
        delete done;
    });
}

int run_libuv(int port) {
    uv_loop_t* loop = uv_default_loop();
    static uv_tcp_t listener;
    uv_tcp_init(loop, &listener);
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", port, &a);
    if (uv_tcp_bind(&listener, reinterpret_cast<sockaddr*>(&a), 0) != 0) return 1;
    int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 512, [](uv_stream_t* server, int status) {
        if (status < 0) return;
        auto* c = new UvConn;
        uv_tcp_init(server->loop, &c->tcp);
        c->tcp.data = c;
        if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
            uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), uv_on_close);
            return;
        }
        uv_tcp_nodelay(&c->tcp, 1);
        uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp),
                      [](uv_handle_t* h, size_t, uv_buf_t* b) {
                          auto* conn = static_cast<UvConn*>(h->data);
                          *b = uv_buf_init(conn->buf, sizeof conn->buf);
                      },
                      uv_on_read);
    });
    if (rc != 0) return 1;
    listening(port);
    return uv_run(loop, UV_RUN_DEFAULT);
}
#endif

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: echo_servers epoll|asio|libuv PORT\n");
        return 2;
    }
    std::string kind = argv[1];
    int port = std::atoi(argv[2]);
    if (kind == "epoll") return run_epoll(port);
    if (kind == "asio") return run_asio(port);
#ifdef WEFT_BENCH_LIBUV
    if (kind == "libuv") return run_libuv(port);
#endif
    std::fprintf(stderr, "echo_servers: %s not built\n", kind.c_str());
    return 3;
}
