/* The reference for bench/http_bench.sh: a hello-world HTTP/1.1 server on libuv, parsing
 * with the same llhttp weft uses and answering with the same headers as
 * examples/http_server's "/", so the comparison is of the runtimes, not of the bytes.
 * One loop per thread, each with its own SO_REUSEPORT listener, like weft's ServerGroup.
 *
 *     http_uv_server [port] [--loops N]     prints "listening on 127.0.0.1:PORT"; SIGTERM ends it
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    uv_tcp_t tcp;
    llhttp_t parser;
    int close_after; /* the request said Connection: close (or HTTP/1.0 without keep-alive) */
} conn_t;

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
    char data[256];
} write_t;

static llhttp_settings_t settings;

static size_t format_response(char* out, size_t cap, int keep_alive) {
    char date[64];
    time_t now = time(NULL);
    struct tm t;
    gmtime_r(&now, &t);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &t);
    return (size_t)snprintf(out, cap,
                            "HTTP/1.1 200 OK\r\nDate: %s\r\nServer: uv\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n%s\r\n"
                            "Hello, World!\n",
                            date, keep_alive ? "" : "Connection: close\r\n");
}

static void on_closed(uv_handle_t* h) { free(h); }

static void on_written(uv_write_t* req, int status) {
    conn_t* c = req->data;
    free(req);
    if ((status < 0 || c->close_after) && !uv_is_closing((uv_handle_t*)&c->tcp))
        uv_close((uv_handle_t*)&c->tcp, on_closed);
}

static int on_message_complete(llhttp_t* p) {
    conn_t* c = p->data;
    write_t* w = malloc(sizeof *w);
    int keep_alive = llhttp_should_keep_alive(p);
    if (!keep_alive) c->close_after = 1;
    w->buf = uv_buf_init(w->data, (unsigned)format_response(w->data, sizeof w->data, keep_alive));
    w->req.data = c;
    uv_write(&w->req, (uv_stream_t*)&c->tcp, &w->buf, 1, on_written);
    return 0;
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    conn_t* c = (conn_t*)s;
    if (n > 0 && llhttp_execute(&c->parser, buf->base, (size_t)n) != HPE_OK) n = UV_EOF;
    if (n < 0 && !uv_is_closing((uv_handle_t*)s)) uv_close((uv_handle_t*)s, on_closed);
    free(buf->base);
}

static void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    conn_t* c = calloc(1, sizeof *c);
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
        uv_close((uv_handle_t*)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static int listen_fd(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0 || listen(fd, 1024) != 0) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

static void* serve(void* arg) {
    int fd = (int)(intptr_t)arg;
    uv_loop_t loop;
    uv_tcp_t server;
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &server);
    uv_tcp_open(&server, fd);
    uv_listen((uv_stream_t*)&server, 1024, on_connection);
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

int main(int argc, char** argv) {
    int port = 0, loops = 1;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--loops") == 0 && i + 1 < argc)
            loops = atoi(argv[++i]);
        else
            port = atoi(argv[i]);
    }
    llhttp_settings_init(&settings);
    settings.on_message_complete = on_message_complete;

    int first = listen_fd(port);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(first, (struct sockaddr*)&a, &len);
    port = ntohs(a.sin_port);

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    for (int i = 0; i < loops; ++i) {
        pthread_t t;
        pthread_create(&t, NULL, serve, (void*)(intptr_t)(i == 0 ? first : listen_fd(port)));
        pthread_detach(t);
    }
    printf("listening on 127.0.0.1:%d (%d loop%s)\n", port, loops, loops == 1 ? "" : "s");
    fflush(stdout);
    int signo;
    sigwait(&signals, &signo);
    return 0; /* the process ends with its loops: nothing to hand back */
}
