"""The TLS part of `make bench` (issue 16), used by bench_run.py: the servers, the handshake
runs and the floor benchmark's job.

Servers: weft's echo_server with --cert/--key, the Boost.Asio ssl::stream peer and the Go
crypto/tls peer, all serving one certificate (EC P-256, made per run in a temporary
directory by tests/common/make_test_certs.sh; no key is kept). Every client offers one
suite only, so all three agree on it: TLS 1.3 TLS_AES_128_GCM_SHA256 (Go's and the
browsers' first choice; OpenSSL's own first is AES-256) and, for TLS 1.2,
ECDHE-ECDSA-AES128-GCM-SHA256; the key exchange is X25519 everywhere (the clients' first).

Handshakes: `openssl s_time` (one connection at a time, no verification) pinned to the
client core; -new for full handshakes, -reuse for resumed ones. clients:1 is one s_time,
so its rate is bound by the round trips and wake-ups of each handshake as much as by the
server's work; clients:4 runs four at once (on the same client core), which keeps the
server busy and so measures its throughput more than its latency. -reuse runs over TLS 1.2:
s_time never reads TLS 1.3's post-handshake session tickets, so over 1.3 every one of its
"reused" connections is a full handshake (checked: it prints '*' for each, not 'r').
The server's CPU time over the run (its process CPU clock) gives CPU per handshake.
"""
import ctypes
import os
import re
import select
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE13 = "TLS_AES_128_GCM_SHA256"
CIPHER12 = "ECDHE-ECDSA-AES128-GCM-SHA256"
ECHO_CONFIGS = [("BM_TlsEchoPingPong/conns:1/bytes:64", 1, 64),
                ("BM_TlsEchoPingPong/conns:50/bytes:64", 50, 64),
                ("BM_TlsEchoStream/conns:1/bytes:16384", 1, 16384),
                ("BM_TlsEchoStream/conns:50/bytes:16384", 50, 16384)]
# (row, s_time arguments, s_time processes at once)
HANDSHAKES = [(f"{row}/clients:{n}", args, n) for n in (1, 4) for row, args in [
    ("BM_TlsHandshakeFull/tls:13", ["-new", "-tls1_3", "-ciphersuites", SUITE13]),
    ("BM_TlsHandshakeFull/tls:12", ["-new", "-tls1_2", "-cipher", CIPHER12]),
    ("BM_TlsHandshakeResumed/tls:12", ["-reuse", "-tls1_2", "-cipher", CIPHER12])]]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True)


def process_cpu_s(pid):
    """CPU seconds of a process, all its threads (dead ones too), as echo_client reads it."""
    clock, ts = ctypes.c_int(), _Timespec()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0 or _libc.clock_gettime(clock, ctypes.byref(ts)) != 0:
        return -1.0
    return ts.tv_sec + ts.tv_nsec / 1e9


def make_certs(note):
    """A temporary directory with ca.pem, server.pem and server.key, or None (skipped)."""
    if not shutil.which("openssl"):
        note("tls: the openssl tool is missing (apt-get install openssl); the TLS rows are skipped")
        return None
    d = tempfile.mkdtemp(prefix="weft-bench-tls-")
    out = subprocess.run(["bash", os.path.join(ROOT, "tests", "common", "make_test_certs.sh"), d],
                         capture_output=True, text=True)
    if out.returncode != 0:
        note(f"tls: make_test_certs.sh failed; the TLS rows are skipped: {out.stderr.strip()[-300:]}")
        shutil.rmtree(d, ignore_errors=True)
        return None
    return d


def servers(build, certs, note):
    """{server: argv prefix taking PORT last} of the TLS echo servers that exist."""
    cert, key = os.path.join(certs, "server.pem"), os.path.join(certs, "server.key")
    b = os.path.join(build, "bench")
    candidates = {"weft": [f"{b}/echo_server", "--cert", cert, "--key", key],
                  "asio": [f"{b}/asio_tls_echo_server", cert, key],
                  "go": [os.path.join(build, "peers", "go-peer"), "tlsecho", cert, key]}
    out = {}
    for name, argv in candidates.items():
        if os.access(argv[0], os.X_OK):
            out[name] = argv
        else:
            note(f"tls: {name}'s server {os.path.relpath(argv[0], ROOT)} is not built; its TLS rows are skipped")
    return out


def floor_job(build, certs, min_time):
    argv = [os.path.join(build, "bench", "tls_floor_bench"), os.path.join(certs, "server.pem"),
            os.path.join(certs, "server.key"), f"--benchmark_min_time={min_time}", "--benchmark_format=json"]
    # The job (and raw file) name has no colon; bench_table.py shows it as floor:openssl.
    return ("gbench", "openssl_floor", argv) if os.access(argv[0], os.X_OK) else None


def client_args(certs):
    """What bench/echo_client needs to speak TLS to these servers."""
    return ["--tls", "--cafile", os.path.join(certs, "ca.pem"), "--ciphersuites", SUITE13]


def start_server(argv, port, pin, log):
    """The server, started and listening, or an error string."""
    server = subprocess.Popen(pin + argv + [str(port)], stdout=subprocess.PIPE, stderr=log, text=True)
    ready = select.select([server.stdout], [], [], 15)[0]
    line = server.stdout.readline() if ready else "(no 'listening' line in 15 s)"
    if not line.startswith("listening"):
        stop(server)
        return None, f"server did not start: {line.strip()}"
    return server, None


def stop(server):
    server.terminate()
    try:
        server.wait(5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run_handshakes(argv, name, row, s_time_args, clients, seconds, port, pin, log):
    """`clients` s_time runs at once against one server: a JSON-ready dict, or (None, error)."""
    server, err = start_server(argv, port, pin[0], log)
    if err:
        return None, f"{name} {row}: {err}"
    try:
        cpu0, t0 = process_cpu_s(server.pid), time.monotonic()
        runs = [subprocess.Popen(pin[1] + ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-time",
                                           str(seconds)] + s_time_args,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(clients)]
        outs = [(r.communicate(timeout=seconds + 30)[0], r.returncode) for r in runs]
        # s_time's wall time, its own start included (a few ms of a 1-3 s run).
        wall, cpu1 = time.monotonic() - t0, process_cpu_s(server.pid)
    finally:
        stop(server)
    n, marks = 0, ""
    for text, rc in outs:
        m = re.search(r"(\d+) connections in [\d.]+s", text)
        if rc != 0 or not m or int(m.group(1)) == 0:
            return None, f"{name} {row}: s_time failed: {text.strip()[-300:]}"
        n += int(m.group(1))
        # One mark per connection: 'r' resumed, '*' a full handshake (-reuse's first is).
        marks += "".join(re.findall(r"^[r*]+$", text, re.M))
    rec = {"bench": row, "peer": name, "handshakes": n, "seconds": round(wall, 3),
           "handshakes_per_s": round(n / wall, 1),
           "server_cpu_us_per_handshake": round((cpu1 - cpu0) * 1e6 / n, 2) if cpu0 >= 0 and cpu1 >= 0 else -1}
    if "-reuse" in s_time_args:
        rec["resumed_share"] = round(marks.count("r") / max(1, len(marks)), 3)
        if rec["resumed_share"] < 0.9:
            return None, f"{name} {row}: only {rec['resumed_share']:.0%} of the connections resumed"
    return rec, None
