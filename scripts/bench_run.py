#!/usr/bin/python3
"""Runs weft's benchmarks and the peers' same workloads, interleaved, for `make bench`.

    bench_run.py BUILD OUTDIR [--quick] [--tls-only]

Every round runs each job once — weft's Google Benchmark suites, the C++ peers' suites,
the Go, Tokio and Python peers, and the echo servers — in an order that alternates between
rounds, so drift on a shared machine hits weft and the peers alike; bench_table.py quotes
medians over rounds. Echo runs pin the server to CPU 0 and the client to CPU 1 (taskset)
and the client reads the server's CPU time over the measured window. A job whose program
is missing is skipped with a printed note. The Go, Tokio and Python peers print JSON lines
kept as they are; a line may carry a "config" (Tokio's runtimes, Go's GOMAXPROCS), which
bench_table.py resolves to the peer's fastest configuration. Then, each round, the TLS rows (scripts/bench_tls.py):
the TLS echo and s_time's handshakes against weft and its TLS peers, and OpenSSL's floor.
--tls-only: those alone, with the plain echo of the same servers (and the epoll floor) beside
them for what TLS adds. Raw outputs go to OUTDIR/raw/,
and OUTDIR/index.json lists them. Standard library only;
runs with /usr/bin/python3.
"""
import atexit
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

import bench_tls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
ECHO_CONFIGS = [("BM_EchoPingPong/conns:1/bytes:64", 1, 64),
                ("BM_EchoPingPong/conns:50/bytes:64", 50, 64),
                ("BM_EchoStream/conns:1/bytes:16384", 1, 16384)]


def note(msg):
    print(f"bench: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinning():
    """taskset prefixes for server and client, or none on a single CPU / without taskset."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    note("echo runs are not pinned (needs taskset and 2 CPUs)")
    return [], []


def gbench_jobs(build, min_time):
    """(name, argv) for Google Benchmark binaries: weft's suites, then the C++ peers'."""
    b = os.path.join(build, "bench")
    gb = [f"--benchmark_min_time={min_time}", "--benchmark_format=json"]
    jobs = [
        ("weft.core", [f"{b}/core_bench"] + gb),
        ("weft.fiber", [f"{b}/fiber_bench", "--benchmark_filter=-BM_SleepCancel"] + gb),
        # BM_SleepCancel in a process of its own, cold as the Go and Tokio peers' runs of it
        # (after the other fiber benchmarks it would reuse their freed heap).
        ("weft.sleepcancel", [f"{b}/fiber_bench", "--benchmark_filter=^BM_SleepCancel"] + gb),
        # thread_bench: the executor round trip, Asio's cross-thread post as a peer, idle CPU.
        ("weft.thread", [f"{b}/thread_bench", "--benchmark_filter=^BM_(ExecutorRoundTrip|AsioPostCrossThread|Idle[A-Za-z]+Cpu)"] + gb),
        ("asio", [f"{b}/asio_peer_bench"] + gb),
        ("boost_fiber", [f"{b}/boost_fiber_peer_bench"] + gb),
        ("libuv", [f"{b}/libuv_peer_bench"] + gb),
        ("floors", [f"{b}/queue_floor_bench"] + gb),
    ]
    out = []
    for name, argv in jobs:
        if os.access(argv[0], os.X_OK):
            out.append(("gbench", name, argv))
        else:
            note(f"{name}: {os.path.relpath(argv[0], ROOT)} not built (library missing?); skipped")
    return out


def peer_programs(build):
    """argv prefixes of the non-C++ peers that exist: {peer: (bench argv, echo argv)}."""
    peers = {}
    go = os.path.join(build, "peers", "go-peer")
    if os.access(go, os.X_OK):
        peers["go"] = ([go, "bench"], [go, "echo"])
    else:
        note("go: not built (golang-go missing?); skipped")
    tokio = os.path.join(build, "cargo", "release", "weft-peer-tokio")
    if os.access(tokio, os.X_OK):
        peers["tokio"] = ([tokio, "bench"], [tokio, "echo"])
    else:
        note("tokio: not built (cargo or librust-tokio-dev missing?); skipped")
    py = os.path.join(ROOT, "bench", "peers", "python", "peer.py")
    if os.access(PYTHON, os.X_OK):
        peers["asyncio"] = ([PYTHON, py, "bench", "asyncio"], [PYTHON, py, "echo", "asyncio"])
        if subprocess.run([PYTHON, "-c", "import uvloop"], capture_output=True).returncode == 0:
            peers["uvloop"] = ([PYTHON, py, "bench", "uvloop"], [PYTHON, py, "echo", "uvloop"])
        else:
            note("uvloop: not importable by /usr/bin/python3 (python3-uvloop missing?); skipped")
    else:
        note("asyncio, uvloop: /usr/bin/python3 missing; skipped")
    return peers


def echo_servers(build, peers):
    """{server: argv prefix taking PORT last}."""
    b = os.path.join(build, "bench")
    servers = {}
    if os.access(f"{b}/echo_server", os.X_OK):
        servers["weft"] = [f"{b}/echo_server"]
    if os.access(f"{b}/echo_servers", os.X_OK):
        servers["floor:epoll"] = [f"{b}/echo_servers", "epoll"]
        servers["asio"] = [f"{b}/echo_servers", "asio"]
        if os.access(f"{b}/libuv_peer_bench", os.X_OK):  # built under the same condition
            servers["libuv"] = [f"{b}/echo_servers", "libuv"]
    for peer, (_, echo) in peers.items():
        servers[peer] = echo
    return servers


def run_echo(client, servers, server_name, config, seconds, warmup, pin, client_args=()):
    bench, conns, size = config
    port = free_port()
    server = subprocess.Popen(pin[0] + servers[server_name] + [str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        ready = select.select([server.stdout], [], [], 15)[0]
        line = server.stdout.readline() if ready else "(no 'listening' line in 15 s)"
        if not line.startswith("listening"):
            err = server.stderr.read() if server.poll() is not None else ""
            return None, f"{server_name} server did not start: {line.strip()} {err.strip()}"
        out = subprocess.run(pin[1] + [client, "--port", str(port), "--conns", str(conns), "--size", str(size),
                                       "--seconds", str(seconds), "--warmup", str(warmup),
                                       "--server-pid", str(server.pid)] + list(client_args),
                             capture_output=True, text=True, timeout=seconds + warmup + 30)
        if out.returncode != 0:
            return None, f"{server_name} {bench}: client failed: {out.stderr.strip()}"
        result = json.loads(out.stdout)
        result.update(bench=bench, peer=server_name)
        return result, None
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    build, outdir = os.path.abspath(sys.argv[1]), sys.argv[2]
    quick = "--quick" in sys.argv[3:]
    rounds = 1 if quick else 3
    min_time = 0.05 if quick else 0.4          # per Google Benchmark / peer workload
    echo_seconds, echo_warmup = (0.4, 0.1) if quick else (1.5, 0.3)
    raw = os.path.join(outdir, "raw")
    os.makedirs(raw, exist_ok=True)

    tls_only = "--tls-only" in sys.argv[3:]
    jobs = [] if tls_only else gbench_jobs(build, min_time)
    peers = peer_programs(build)
    for peer, (bench_argv, _) in ({} if tls_only else peers).items():
        jobs.append(("jsonl", peer, bench_argv + [str(min_time)]))
    client = os.path.join(build, "bench", "echo_client")
    have_client = os.access(client, os.X_OK)
    servers = echo_servers(build, peers) if have_client else {}
    if tls_only:  # the plain echo of the servers that also speak TLS, and the floor: TLS's cost
        servers = {k: v for k, v in servers.items() if k in ("weft", "asio", "go", "floor:epoll")}
    if not have_client:
        note("echo: bench/echo_client not built; echo and TLS runs skipped")
    pin = pinning()
    certs = bench_tls.make_certs(note)
    tls_servers = bench_tls.servers(build, certs, note) if certs and have_client else {}
    if certs and (job := bench_tls.floor_job(build, certs, min_time)):
        jobs.append(job)
    elif certs:
        note("floor:openssl: bench/tls_floor_bench not built (libbenchmark-dev missing?); skipped")
    if certs:
        atexit.register(shutil.rmtree, certs, True)  # the keys live only as long as the run

    index = {"quick": quick, "rounds": rounds, "min_time": min_time, "echo_seconds": echo_seconds,
             "pinned": bool(pin[0]), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "nproc": os.cpu_count(), "cpu": cpu_model(), "commit": git("rev-parse", "--short", "HEAD"),
             # Library sources with uncommitted changes at run time (a shared working tree).
             "uncommitted": [l[3:] for l in git("status", "--porcelain", "--", "core", "fiber", "net").splitlines()
                             if l[:2].strip() and not l.startswith("??")],
             "files": []}
    for r in range(rounds):
        # Alternate the order so neither weft nor a peer always runs first.
        order = jobs if r % 2 == 0 else list(reversed(jobs))
        for kind, name, argv in order:
            t0 = time.time()
            out = subprocess.run(argv, capture_output=True, text=True)
            if out.returncode != 0:
                note(f"{name} round {r + 1} failed ({out.returncode}): {out.stderr.strip()[-300:]}")
                continue
            path = os.path.join(raw, f"{name}.r{r + 1}.{'json' if kind == 'gbench' else 'jsonl'}")
            with open(path, "w") as f:
                f.write(out.stdout)
            index["files"].append({"kind": kind, "job": name, "round": r + 1, "path": os.path.relpath(path, outdir)})
            note(f"round {r + 1}/{rounds}: {name} ({time.time() - t0:.1f} s)")
        echo_path = os.path.join(raw, f"echo.r{r + 1}.jsonl")
        names = list(servers) if r % 2 == 0 else list(reversed(servers))
        t0 = time.time()
        with open(echo_path if servers else os.devnull, "w") as f:
            for config in ECHO_CONFIGS:
                for s in names:
                    result, err = run_echo(client, servers, s, config, echo_seconds, echo_warmup, pin)
                    if err:
                        note(err)
                    else:
                        f.write(json.dumps(result) + "\n")
        if servers:
            index["files"].append({"kind": "echo", "job": "echo", "round": r + 1, "path": os.path.relpath(echo_path, outdir)})
            note(f"round {r + 1}/{rounds}: echo, {len(servers)} servers x {len(ECHO_CONFIGS)} ({time.time() - t0:.1f} s)")
        if tls_servers:
            run_tls_round(r, client, tls_servers, certs, echo_seconds, echo_warmup, 1 if quick else 2, pin, raw,
                          outdir, index)
    index["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(outdir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


def run_tls_round(r, client, tls_servers, certs, echo_seconds, echo_warmup, handshake_seconds, pin, raw,
                  outdir, index):
    """One round of the TLS echo and handshake runs, every server in turn, order alternating."""
    path = os.path.join(raw, f"tls.r{r + 1}.jsonl")
    names = list(tls_servers) if r % 2 == 0 else list(reversed(tls_servers))
    t0 = time.time()
    with open(path, "w") as f, open(os.path.join(raw, f"tls-servers.r{r + 1}.log"), "w") as log:
        for config in bench_tls.ECHO_CONFIGS:
            for s in names:
                result, err = run_echo(client, tls_servers, s, config, echo_seconds, echo_warmup, pin,
                                       bench_tls.client_args(certs))
                if err:
                    note(f"tls: {err}")
                else:
                    f.write(json.dumps(result) + "\n")
        for row, args, clients in bench_tls.HANDSHAKES:
            for s in names:
                result, err = bench_tls.run_handshakes(tls_servers[s], s, row, args, clients, handshake_seconds,
                                                       free_port(), pin, log)
                if err:
                    note(f"tls: {err}")
                else:
                    f.write(json.dumps(result) + "\n")
    index["files"].append({"kind": "tls", "job": "tls", "round": r + 1, "path": os.path.relpath(path, outdir)})
    note(f"round {r + 1}: TLS, {len(tls_servers)} servers x {len(bench_tls.ECHO_CONFIGS)} echo + "
         f"{len(bench_tls.HANDSHAKES)} handshake runs ({time.time() - t0:.1f} s)")


def git(*args):
    out = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
