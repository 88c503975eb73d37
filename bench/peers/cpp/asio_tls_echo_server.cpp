// The Boost.Asio peer of weft's TLS echo server: ssl::stream over one io_context on one
// thread, callbacks as in echo_servers.cpp's plain Asio server. OpenSSL's server defaults
// otherwise (session cache and tickets on), so resumption works as it does for weft.
// Usage: asio_tls_echo_server CERT KEY PORT
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

namespace {

namespace asio = boost::asio;
using Socket = asio::ssl::stream<asio::ip::tcp::socket>;

struct Session : std::enable_shared_from_this<Session> {
    Socket stream;
    char data[64 * 1024];
    explicit Session(Socket s) : stream(std::move(s)) {
        stream.next_layer().set_option(asio::ip::tcp::no_delay(true));
    }
    void start() {
        auto self = shared_from_this();
        stream.async_handshake(asio::ssl::stream_base::server, [self](auto ec) {
            if (!ec) self->read();
        });
    }
    void read() {
        stream.async_read_some(asio::buffer(data), [self = shared_from_this()](auto ec, size_t n) {
            if (ec) return;  // EOF, close_notify or an error: the session ends
            asio::async_write(self->stream, asio::buffer(self->data, n), [self](auto ec2, size_t) {
                if (!ec2) self->read();
            });
        });
    }
};

void accept(asio::ip::tcp::acceptor& acceptor, asio::ssl::context& ctx) {
    acceptor.async_accept([&acceptor, &ctx](auto ec, asio::ip::tcp::socket s) {
        if (!ec) std::make_shared<Session>(Socket(std::move(s), ctx))->start();
        accept(acceptor, ctx);
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: asio_tls_echo_server CERT KEY PORT\n");
        return 2;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1);
    ctx.use_certificate_chain_file(argv[1]);
    ctx.use_private_key_file(argv[2], asio::ssl::context::pem);
    const int port = std::atoi(argv[3]);
    asio::io_context io(1);  // concurrency hint 1: one thread, as a server per core runs
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), uint16_t(port)});
    std::printf("listening %d\n", port);
    std::fflush(stdout);
    accept(acceptor, ctx);
    io.run();
    return 0;
}
