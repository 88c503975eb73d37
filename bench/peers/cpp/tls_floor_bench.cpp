// The floor under the TLS rows of `make bench`: what OpenSSL itself costs a server, with no
// socket, no kernel and no event loop. A client and a server SSL object sit in one thread,
// joined by a BIO pair; each benchmark times only the server's calls (its SSL_new/SSL_free,
// handshake steps, SSL_read and SSL_write) and reports that as the manual time per
// iteration, with the client's share left out, as the servers' CPU per request leaves the
// load generator out. The counters are CPU time, as the servers' figures are: `pair_ns` is
// the thread's CPU time per iteration (both sides), `server_ns` the server's share of it
// (its share of the wall time, which preemption on a shared machine inflates for both
// sides alike; a CPU clock read around each call would cost more than a 64 B echo).
// Same certificate, key, suite (TLS_AES_128_GCM_SHA256 / ECDHE-ECDSA-AES128-GCM-SHA256)
// and key exchange (X25519) as the echo client and s_time offer the servers.
// Usage: tls_floor_bench CERT KEY [--benchmark_* flags]
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>

namespace {

const char* g_cert = nullptr;
const char* g_key = nullptr;

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
    char reason[256] = "no reason";
    if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, reason, sizeof reason);
    std::fprintf(stderr, "tls_floor_bench: %s: %s\n", what, reason);
    std::exit(1);
}

SSL_CTX* server_context() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, g_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, g_key, SSL_FILETYPE_PEM) != 1)
        die("certificate or key");
    return ctx;
}

SSL_CTX* client_context(int version) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // as s_time: the client checks nothing
    return ctx;
}

// One connection: the two ends and the server's time so far.
struct Pair {
    SSL* client = nullptr;
    SSL* server = nullptr;
    Clock::duration server_time{};

    Pair(SSL_CTX* cctx, SSL_CTX* sctx, SSL_SESSION* resume = nullptr) {
        client = SSL_new(cctx);
        if (resume) SSL_set_session(client, resume);
        server_call([&] {
            server = SSL_new(sctx);
            return 1;
        });
        BIO *c = nullptr, *s = nullptr;
        BIO_new_bio_pair(&c, 64 * 1024, &s, 64 * 1024);  // room for a whole 16 KiB record
        SSL_set_bio(client, c, c);
        SSL_set_bio(server, s, s);
        SSL_set_connect_state(client);
        SSL_set_accept_state(server);
    }
    ~Pair() {
        // As s_time: marked shut down, else SSL_free marks a shared session not resumable.
        SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(client);
        server_call([&] {
            SSL_free(server);
            return 1;
        });
    }

    template <class F>
    int server_call(F f) {
        auto t0 = Clock::now();
        int rc = f();
        server_time += Clock::now() - t0;
        return rc;
    }

    // Both handshakes, turn about, until both are done; then the client reads what the
    // server sent after its Finished (TLS 1.3's session tickets), as a real client would.
    void handshake() {
        bool c_done = false, s_done = false;
        while (!c_done || !s_done) {
            if (!c_done) c_done = step(client, SSL_do_handshake(client), "client handshake");
            if (!s_done)
                s_done = step(server, server_call([&] { return SSL_do_handshake(server); }),
                              "server handshake");
        }
        char byte;
        if (SSL_read(client, &byte, 1) > 0) die("unexpected data");
    }

    static bool step(SSL* ssl, int rc, const char* what) {
        if (rc == 1) return true;
        int err = SSL_get_error(ssl, rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) die(what);
        return false;
    }
};

double thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// server, pair: wall time in the server's calls and in whole iterations; cpu_ns: the
// thread's CPU time over the loop.
void report(benchmark::State& state, Clock::duration server, Clock::duration pair, double cpu_ns) {
    double share = pair.count() > 0 ? double(server.count()) / double(pair.count()) : 0;
    state.counters["server_ns"] =
        benchmark::Counter(cpu_ns * share, benchmark::Counter::kAvgIterations);
    state.counters["pair_ns"] = benchmark::Counter(cpu_ns, benchmark::Counter::kAvgIterations);
    state.counters["server_share"] = share;
}

// A whole connection's handshake, TLS 1.3 (range 13) or 1.2 (12), from SSL_new to SSL_free.
void BM_TlsHandshakeFull_OpenSSL(benchmark::State& state) {
    SSL_CTX* sctx = server_context();
    SSL_CTX* cctx = client_context(state.range(0) == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    Clock::duration server{}, pair{};
    const double cpu0 = thread_cpu_ns();
    for (auto _ : state) {
        auto t0 = Clock::now();
        Clock::duration s;
        {
            Pair p(cctx, sctx);
            p.handshake();
            s = p.server_time;
        }
        server += s;
        pair += Clock::now() - t0;
        state.SetIterationTime(std::chrono::duration<double>(s).count());
    }
    report(state, server, pair, thread_cpu_ns() - cpu0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
BENCHMARK(BM_TlsHandshakeFull_OpenSSL)->ArgName("tls")->Arg(13)->Arg(12)->UseManualTime();

// A TLS 1.2 handshake resuming the first connection's session (a ticket), as s_time -reuse.
void BM_TlsHandshakeResumed_OpenSSL(benchmark::State& state) {
    SSL_CTX* sctx = server_context();
    SSL_CTX* cctx = client_context(TLS1_2_VERSION);
    SSL_SESSION* session;
    {
        Pair first(cctx, sctx);
        first.handshake();
        session = SSL_get1_session(first.client);
        SSL_shutdown(first.client);
    }
    Clock::duration server{}, pair{};
    const double cpu0 = thread_cpu_ns();
    for (auto _ : state) {
        auto t0 = Clock::now();
        Clock::duration s;
        {
            Pair p(cctx, sctx, session);
            p.handshake();
            if (!SSL_session_reused(p.client)) die("the session was not resumed");
            s = p.server_time;
        }
        server += s;
        pair += Clock::now() - t0;
        state.SetIterationTime(std::chrono::duration<double>(s).count());
    }
    report(state, server, pair, thread_cpu_ns() - cpu0);
    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
BENCHMARK(BM_TlsHandshakeResumed_OpenSSL)->ArgName("tls")->Arg(12)->UseManualTime();

// One echo over an established TLS 1.3 connection: the client writes `bytes`, the server
// reads them (up to 64 KiB a call, as the servers do) and writes them back, the client reads.
void BM_TlsEcho_OpenSSL(benchmark::State& state) {
    SSL_CTX* sctx = server_context();
    SSL_CTX* cctx = client_context(TLS1_3_VERSION);
    Pair p(cctx, sctx);
    p.handshake();
    const size_t size = size_t(state.range(0));
    std::string message(size, 'm');
    std::string buf(64 * 1024, '\0');
    Clock::duration server{}, pair{};
    const double cpu0 = thread_cpu_ns();
    for (auto _ : state) {
        auto t0 = Clock::now();
        p.server_time = {};
        if (SSL_write(p.client, message.data(), int(size)) != int(size)) die("client write");
        size_t got = 0;
        while (got < size) {
            int n = p.server_call([&] { return SSL_read(p.server, buf.data(), int(buf.size())); });
            if (n <= 0) die("server read");
            if (p.server_call([&] { return SSL_write(p.server, buf.data(), n); }) != n)
                die("server write");
            got += size_t(n);
        }
        for (got = 0; got < size;) {
            int n = SSL_read(p.client, buf.data(), int(buf.size()));
            if (n <= 0) die("client read");
            got += size_t(n);
        }
        server += p.server_time;
        pair += Clock::now() - t0;
        state.SetIterationTime(std::chrono::duration<double>(p.server_time).count());
    }
    report(state, server, pair, thread_cpu_ns() - cpu0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
BENCHMARK(BM_TlsEcho_OpenSSL)->ArgName("bytes")->Arg(64)->Arg(16384)->UseManualTime();

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);  // leaves what is not a --benchmark flag
    if (argc < 3) {
        std::fprintf(stderr, "usage: tls_floor_bench CERT KEY [--benchmark_* flags]\n");
        return 2;
    }
    g_cert = argv[1];
    g_key = argv[2];
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
