#!/usr/bin/python3
"""Merges one `make bench` run (bench_run.py's OUTDIR) into one table, a summary and a chart.

    bench_table.py OUTDIR [--chart PATH]

Reads OUTDIR/index.json and the raw Google Benchmark JSON and peers' JSON lines it lists,
takes the median over rounds of every (benchmark, implementation), prints a Markdown
table — benchmark, which way is better, weft, each peer, the floors, and weft's ratio to
the best peer — then the issue's goals with weft's measured values. A peer that measures a
workload in several configurations (lines with "config": Tokio's current-thread runtime with
and without the I/O driver and its multi-thread runtime; Go's GOMAXPROCS) is quoted at its
fastest configuration's median, marked * and footnoted with the others. Writes OUTDIR/summary.json,
OUTDIR/table.md and, when gnuplot is installed, OUTDIR/chart.svg (and a copy at --chart).
Standard library only; runs with /usr/bin/python3.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

PEERS = ["asio", "boost_fiber", "libuv", "go", "tokio", "asyncio", "uvloop"]
FLOORS = ["floor:epoll", "floor:mutex+deque", "floor:moodycamel", "floor:openssl"]
SUFFIX = {"Asio": "asio", "BoostFiber": "boost_fiber", "Libuv": "libuv", "PlainEpoll": "floor:epoll",
          "MutexDeque": "floor:mutex+deque", "Moodycamel": "floor:moodycamel"}
# Rows in table order: (row, what one unit is, better).
MICRO = [
    ("BM_ContextSwitch", "ns per raw Boost.Context round trip (weft column = the floor)", "lower"),
    ("BM_FiberYield", "ns per yield, two tasks ping-pong", "lower"),
    ("BM_SpawnJoin", "ns per spawn + join of a trivial task", "lower"),
    ("BM_FutureSetAwait", "ns, a callback sets a future a task awaits", "lower"),
    ("BM_Gather10k", "ns per task, 10k tasks yield once, gathered", "lower"),
    ("BM_CallSoon", "ns per callback, call_soon / post chain", "lower"),
    ("BM_CallLaterCancel/1000000", "ns per timer, 1M timers, half cancelled", "lower"),
    ("BM_CallSoonThreadsafe/producers:1", "ns per item, 1 producer thread -> loop", "lower"),
    ("BM_CallSoonThreadsafe/producers:2", "ns per item, 2 producer threads -> loop", "lower"),
    ("BM_ExecutorRoundTrip", "ns, job to a thread pool and back", "lower"),
    ("BM_IdleFiberRSS", "bytes of RSS per suspended task (100k)", "lower"),
    ("BM_SleepCancel/fibers:100000", "ns per task: 100k each sleep on their own timer, all cancelled (fresh loop)",
     "lower"),
    ("BM_SleepCancelRSS/fibers:100000", "bytes of peak RSS per task in BM_SleepCancel", "lower"),
    ("BM_IdleLoopCpu", "% of a core: a loop with nothing to do, 200 ms", "lower"),
    ("BM_IdleTrickleCpu", "% of a core: a loop sent one callback per ms, 200 ms", "lower"),
    ("BM_IdlePoolCpu", "% of a core: a 4-worker pool with no jobs, 200 ms", "lower"),
]
ECHO = ["BM_EchoPingPong/conns:1/bytes:64", "BM_EchoPingPong/conns:50/bytes:64", "BM_EchoStream/conns:1/bytes:16384"]
ECHO_METRICS = [("req_per_s", "req/s", "higher"), ("server_cpu_ns_per_req", "server CPU ns/req", "lower"),
                ("p99_us", "p99 us", "lower")]
# Issue 16's rows (scripts/bench_tls.py): weft's TLS server in the weft column, Asio's
# ssl::stream and Go's crypto/tls in theirs; floor:openssl is tls_floor_bench (the server's
# share of the same OpenSSL work, no loop), shown in the CPU rows only.
TLS_HANDSHAKES = [f"{row}/clients:{n}" for n in (1, 4) for row in
                  ["BM_TlsHandshakeFull/tls:13", "BM_TlsHandshakeFull/tls:12", "BM_TlsHandshakeResumed/tls:12"]]
TLS_ECHO = ["BM_TlsEchoPingPong/conns:1/bytes:64", "BM_TlsEchoPingPong/conns:50/bytes:64",
            "BM_TlsEchoStream/conns:1/bytes:16384", "BM_TlsEchoStream/conns:50/bytes:16384"]
TLS_METRICS = [("handshakes_per_s", "handshakes/s", "higher"),
               ("server_cpu_us_per_handshake", "server CPU us/handshake", "lower"),
               ("req_per_s", "req/s", "higher"), ("mb_per_s", "MB/s", "higher")] + ECHO_METRICS[1:]
# tls_floor_bench's benchmarks -> the rows they are the floor of, and the unit's ns.
TLS_FLOOR_ROWS = {f"{row}_OpenSSL/{v}": ([f"{row}/{v}/clients:{n}" for n in (1, 4)], 1e3) for row, v in
                  [("BM_TlsHandshakeFull", "tls:13"), ("BM_TlsHandshakeFull", "tls:12"),
                   ("BM_TlsHandshakeResumed", "tls:12")]}
TLS_FLOOR_ROWS.update({"BM_TlsEcho_OpenSSL/bytes:64": (TLS_ECHO[:2], 1),
                       "BM_TlsEcho_OpenSSL/bytes:16384": (TLS_ECHO[2:], 1)})


def tls_rows():
    """(row, label, better) of the TLS rows, in table order."""
    for bench in TLS_HANDSHAKES:
        for _, label, better in TLS_METRICS[:2]:
            yield f"{bench} {label}", label, better
    for bench in TLS_ECHO:
        for _, label, better in TLS_METRICS[2:]:
            if label != ("req/s" if "Stream" in bench else "MB/s"):  # bulk rows: MB/s; the others: req/s
                yield f"{bench} {label}", label, better


def gbench_records(path, job):
    """(row, column, value) from one Google Benchmark JSON file."""
    with open(path) as f:
        data = json.load(f)
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        name = re.sub(r"/(real_time|manual_time|iterations:\d+)", "", b["name"])
        if name in TLS_FLOOR_ROWS and "server_ns" in b:
            targets, unit_ns = TLS_FLOOR_ROWS[name]
            for bench in targets:
                label = "server CPU us/handshake" if unit_ns > 1 else "server CPU ns/req"
                yield f"{bench} {label}", "floor:openssl", float(b["server_ns"]) / unit_ns
            continue
        base, _, args = name.partition("/")
        column = "weft"
        if base == "BM_AsioPostCrossThread":
            base, column = "BM_CallSoonThreadsafe", "asio"
        else:
            m = re.fullmatch(r"(BM_[A-Za-z0-9]+)_([A-Za-z]+)", base)
            if m and m.group(2) in SUFFIX:
                base, column = m.group(1), SUFFIX[m.group(2)]
        row = base + ("/" + args if args else "")
        if "peak_rss_bytes_per_fiber" in b:  # BM_SleepCancel: its time, and its RSS row
            yield row.replace("BM_SleepCancel/", "BM_SleepCancelRSS/"), column, float(b["peak_rss_bytes_per_fiber"])
        if "cpu_percent" in b:  # the idle rows: CPU over wall time
            yield row, column, float(b["cpu_percent"])
        elif "rss_bytes_per_fiber" in b:
            yield row, column, float(b["rss_bytes_per_fiber"])
        elif b.get("items_per_second"):
            yield row, column, 1e9 / float(b["items_per_second"])


def load(outdir):
    with open(os.path.join(outdir, "index.json")) as f:
        index = json.load(f)
    samples = {}  # (row, column) -> [values over rounds]
    notes = {}
    for entry in index["files"]:
        path = os.path.join(outdir, entry["path"])
        if entry["kind"] == "gbench":
            for row, col, value in gbench_records(path, entry["job"]):
                samples.setdefault((row, col), []).append(value)
            continue
        with open(path) as f:
            for line in f:
                if not line.strip().startswith("{"):
                    continue
                rec = json.loads(line)
                if entry["kind"] in ("echo", "tls"):
                    if rec.get("tls"):
                        notes.setdefault(("tls", rec["peer"]), set()).add(rec["tls"])
                    for key, label, _ in (ECHO_METRICS if entry["kind"] == "echo" else TLS_METRICS):
                        if rec.get(key, -1) >= 0:
                            samples.setdefault((f"{rec['bench']} {label}", rec["peer"]), []).append(rec[key])
                else:
                    # A peer measured in several configurations (the Tokio peer's runtimes, Go's
                    # GOMAXPROCS) tags each line with "config": kept apart as "peer@config".
                    peer = rec["peer"] + (f"@{rec['config']}" if rec.get("config") else "")
                    samples.setdefault((rec["bench"], peer), []).append(rec["value"])
                    if rec.get("note"):
                        notes[(rec["bench"], rec["peer"])] = rec["note"]
    medians = {k: statistics.median(v) for k, v in samples.items()}
    notes = {k: ", ".join(sorted(v)) if isinstance(v, set) else v for k, v in notes.items()}
    return index, samples, medians, notes


def pick_configs(medians):
    """A peer's figure on a row is its best configuration's median (peers at their best).

    Fills medians[(row, peer)] from the "peer@config" medians and returns
    {(row, peer): (chosen config, {config: median})} for the footnotes."""
    better = {row: b for row, _, b in rows()}
    chosen = {}
    by_peer = {}
    for (row, col), v in medians.items():
        if "@" in col:
            peer, config = col.split("@", 1)
            by_peer.setdefault((row, peer), {})[config] = v
    for key, configs in by_peer.items():
        pick = (max if better.get(key[0]) == "higher" else min)(configs, key=configs.get)
        medians[key] = configs[pick]
        chosen[key] = (pick, configs)
    return chosen


def config_notes(chosen):
    """Footnotes: which configuration of each multi-configuration peer each figure is."""
    if not chosen:
        return ""
    lines = ["Peers measured in more than one configuration (marked *): the figure is the faster "
             "configuration's median; the others, same run:"]
    for (row, peer), (pick, configs) in sorted(chosen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        unit = "" if "RSS" in row else " ns"
        others = "; ".join(f"{c} {fmt(v, row)}{unit}" for c, v in sorted(configs.items(), key=lambda kv: kv[1])
                           if c != pick)
        lines.append(f"- {peer} `{row}`: **{pick}** {fmt(configs[pick], row)}{unit}" +
                     (f" (vs {others})" if others else ""))
    return "\n".join(lines) + "\n\n"


def rows():
    for row, what, better in MICRO:
        yield row, what, better
    for bench in ECHO:
        for _, label, better in ECHO_METRICS:
            yield f"{bench} {label}", label, better
    yield from tls_rows()


def fmt(value, row):
    if value is None:
        return "—"
    if "RSS" in row:
        return f"{value / 1024:.2f} KiB"
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def ratio(weft, best, better):
    """How many times better weft is than best (>1: weft wins)."""
    if weft is None or best is None or weft <= 0 or best <= 0:
        return None
    return best / weft if better == "lower" else weft / best


def build_table(medians):
    columns = ["weft"] + [c for c in PEERS + FLOORS if any(k[1] == c for k in medians)]
    table = []
    for row, what, better in rows():
        cells = {c: medians.get((row, c)) for c in columns}
        peer_values = [(v, c) for c, v in cells.items() if c in PEERS and v is not None]
        best = (min(peer_values) if better == "lower" else max(peer_values)) if peer_values else None
        if all(v is None for v in cells.values()):
            continue
        table.append({"row": row, "what": what, "better": better, "cells": cells,
                      "best_peer": best[1] if best else None,
                      "ratio": ratio(cells["weft"], best[0] if best else None, better)})
    return columns, table


def markdown(columns, table, chosen=None):
    chosen = chosen or {}
    head = ["benchmark", "unit, better"] + columns + ["weft vs best peer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in table:
        r = t["ratio"]
        rtxt = "—" if r is None else f"{r:.2f}x ({t['best_peer']})"
        cells = [fmt(t["cells"][c], t["row"]) + ("*" if (t["row"], c) in chosen else "") for c in columns]
        unit = "" if " " in t["row"] else ("KiB, " if "RSS" in t["row"] else "%, " if "Cpu" in t["row"] else "ns, ")
        lines.append("| " + " | ".join([f"`{t['row']}`", unit + t["better"]] + cells + [rtxt]) + " |")
    return "\n".join(lines)


def goals(medians):
    """Issue 18's goals, each a ratio to a peer of the same run: (goal, weft's value, met?).
    A goal whose figures are missing is left out."""
    m = lambda row, col="weft": medians.get((row, col))
    out = []

    def check(text, value, ok):
        out.append({"goal": text, "measured": value, "met": ok})

    def versus(row, peer, times, text=None):
        """weft at least `times` x faster than `peer` on row (both lower-is-better)."""
        w, p = m(row), m(row, peer)
        if w and p:
            check(text or f"`{row}` >= {times}x {peer}", f"{p / w:.2f}x ({fmt(w, row)} vs {fmt(p, row)} ns)",
                  p / w >= times)

    versus("BM_CallSoon", "asio", 1.5, "call_soon >= 1.5x Asio post")
    for n in (1, 2):
        versus(f"BM_CallSoonThreadsafe/producers:{n}", "go", 1.3,
               f"cross-thread submission, {n} producer(s) >= 1.3x Go's channel")
    for row, what in [("BM_IdleLoopCpu", "an idle loop"), ("BM_IdlePoolCpu", "an idle pool")]:
        if (v := m(row)) is not None:
            check(f"{what} at ~0 CPU (<= 1% of a core)", f"{v:.2f}%", v <= 1)
    y, cs = m("BM_FiberYield"), m("BM_ContextSwitch")
    if y and cs:
        check("fiber yield within 3x the raw one-way switch", f"{y / (cs / 2):.2f}x ({cs / 2:.1f} ns one-way)",
              y <= 3 * cs / 2)
    best = min([(v, c) for c in PEERS if (v := m("BM_FiberYield", c)) is not None], default=None)
    if y and best:
        check("fiber yield >= 2x the best peer", f"{best[0] / y:.2f}x {best[1]}", best[0] / y >= 2)
    versus("BM_SpawnJoin", "tokio", 5, "spawn + join >= 5x Tokio")
    versus("BM_Gather10k", "tokio", 1.5, "BM_Gather10k >= 1.5x Tokio")
    versus("BM_CallLaterCancel/1000000", "asio", 4, "1M timers, half cancelled >= 4x Asio")
    versus("BM_ExecutorRoundTrip", "tokio", 2, "executor round trip >= 2x Tokio's spawn_blocking")
    r = m("BM_IdleFiberRSS")
    if r:
        check("suspended fiber <= 4.5 KiB RSS", f"{r / 1024:.2f} KiB", r <= 4.5 * 1024)
    sc, go = m("BM_SleepCancel/fibers:100000"), m("BM_SleepCancel/fibers:100000", "go")
    if sc and go:  # make stress's 1M sleeping fibers, at 100k
        check("100k fibers on their own timers, all cancelled: faster than Go", f"{go / sc:.2f}x ({sc / 1e3:.1f} us "
              f"vs {go / 1e3:.1f} us per fiber)", sc < go)
    for bench in ECHO:
        cpu = {c: v for c in ["weft"] + PEERS + ["floor:epoll"] if (v := m(f"{bench} server CPU ns/req", c)) is not None}
        if "weft" in cpu and len(cpu) > 1:
            lowest = min(cpu, key=cpu.get)
            check(f"{bench}: lowest server CPU/req of every server, the epoll floor included",
                  f"{cpu['weft']:.0f} ns (lowest: {lowest} {cpu[lowest]:.0f})", lowest == "weft")
    return out


def tls_goals(medians):
    """Issue 16's goals, each against the best TLS peer of the same run."""
    out = []
    tls_peers = ["asio", "go"]

    def versus(row, text, test):
        weft = medians.get((row, "weft"))
        peers = {c: v for c in tls_peers if (v := medians.get((row, c))) is not None}
        if weft is None or not peers:
            return
        lower = "CPU" in row
        best = min(peers, key=peers.get) if lower else max(peers, key=peers.get)
        r = peers[best] / weft if lower else weft / peers[best]
        out.append({"goal": text, "measured": f"{r:.2f}x {best} ({fmt(weft, row)} vs {fmt(peers[best], row)})",
                    "met": test(r)})

    for bench in TLS_HANDSHAKES:
        versus(f"{bench} handshakes/s", f"{bench}: handshakes/s >= 0.95x the best peer", lambda r: r >= 0.95)
    for bench in TLS_ECHO:
        versus(f"{bench} server CPU ns/req", f"{bench}: server CPU/req <= the best peer's", lambda r: r >= 1)
    for bench in TLS_ECHO[2:]:
        versus(f"{bench} MB/s", f"{bench}: bulk throughput >= the best peer", lambda r: r >= 1)
    return out


def tls_suites(notes):
    """What each server agreed with the echo client, e.g. weft: TLSv1.3 TLS_AES_128_GCM_SHA256."""
    agreed = {k[1]: v for k, v in notes.items() if k[0] == "tls"}
    if not agreed:
        return ""
    same = len(set(agreed.values())) == 1
    return ("TLS echo: " + ("every server agreed " + next(iter(agreed.values())) if same else
                            "servers agreed DIFFERENT suites: " + "; ".join(f"{p}: {v}" for p, v in agreed.items()))
            + ". Handshake rows: s_time offering that one TLS 1.3 suite, or ECDHE-ECDSA-AES128-GCM-SHA256"
            " over TLS 1.2 (-reuse resumes only over 1.2); X25519, an EC P-256 certificate.\n")


def goals_markdown(gs):
    lines = ["| goal | weft | met |", "|---|---|---|"]
    for g in gs:
        lines.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else '**no**'} |")
    return "\n".join(lines)


def chart(outdir, table, index):
    """A log-scale bar chart of weft's ratio to the best peer per row; returns the SVG path."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("bench: gnuplot not installed; no chart", flush=True)
        return None
    data = os.path.join(outdir, "chart.dat")
    with open(data, "w") as f:
        for i, t in enumerate(x for x in table if x["ratio"]):
            label = t["row"].replace("BM_", "").replace("/bytes:", " ").replace("conns:", "c") \
                .replace("producers:", "p").replace("/1000000", "").replace("/fibers:100000", " 100k").replace("server CPU ns/req", "CPU/req") \
                .replace("server CPU us/handshake", "CPU/hs")
            f.write(f'{i} {t["ratio"]:.4f} "{label} vs {t["best_peer"]}" {1 if t["ratio"] >= 1 else 2}\n')
    svg = os.path.join(outdir, "chart.svg")
    script = f"""
set terminal svg size 1100,600 dynamic font 'sans,11' background '#ffffff'
set termoption noenhanced
set output '{svg}'
set title "weft vs the best peer per benchmark (>1: weft better; log scale)\\n{index.get('nproc')} cores, {index.get('cpu')}, medians of {index.get('rounds')} interleaved rounds, {index.get('started', '')[:10]}"
set logscale y 2
set yrange [0.0125:80]
set ytics ("1/64" 0.015625, "1/32" 0.03125, "1/8" 0.125, "1/2" 0.5, "1" 1, "2" 2, "8" 8, "32" 32)
set grid ytics
set style fill solid 0.8 noborder
set boxwidth 0.7
set xtics rotate by -40 left font ',9' nomirror
set bmargin 12
set rmargin 14
set ylabel 'weft / best peer (x better)'
set key off
set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#444444' lw 1.5
plot '{data}' using 1:(1):($1-0.35):($1+0.35):(($2<1)?$2:1):(($2<1)?1:$2):($4 == 1 ? 0x3a9d5d : 0xc8553d):xtic(3) \\
       with boxxyerror lc rgb variable, \\
     '' using 1:($2 >= 1 ? $2*1.25 : $2/1.25):(sprintf('%.2g', $2)) with labels font ',9'
"""
    res = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
    if res.returncode != 0:
        print(f"bench: gnuplot failed: {res.stderr.strip()}", flush=True)
        return None
    return svg


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    index, samples, medians, notes = load(outdir)
    chosen = pick_configs(medians)
    columns, table = build_table(medians)
    gs = goals(medians)
    machine = f"{index.get('nproc')} cores ({index.get('cpu')}), {'QUICK, ' if index.get('quick') else ''}" \
              f"medians of {index.get('rounds')} interleaved rounds, echo pinned: {index.get('pinned')}, " \
              f"commit {index.get('commit', '?')}" + (" + uncommitted changes to " + ", ".join(index["uncommitted"])
                                                     if index.get("uncommitted") else "")
    text = f"{machine}\n\n{markdown(columns, table, chosen)}\n\n{config_notes(chosen)}{tls_suites(notes)}"
    if gs:
        text += f"\nGoals (issue 18):\n\n{goals_markdown(gs)}\n"
    tgs = tls_goals(medians)
    if tgs:
        text += f"\nGoals (issue 16, TLS):\n\n{goals_markdown(tgs)}\n"
        gs = gs + tgs
    print(text)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump({"machine": machine, "index": {k: v for k, v in index.items() if k != "files"},
                   "columns": columns, "rows": table, "goals": gs, "notes": {f"{k[0]} {k[1]}": v for k, v in notes.items()},
                   "configs": {f"{k[0]} | {k[1]}": {"chosen": c, "medians": v} for k, (c, v) in chosen.items()},
                   "samples": {f"{k[0]} | {k[1]}": v for k, v in sorted(samples.items())}}, f, indent=1)
    svg = chart(outdir, table, index)
    if svg and "--chart" in sys.argv:
        dest = sys.argv[sys.argv.index("--chart") + 1]
        shutil.copyfile(svg, dest)
        print(f"chart: {dest}")


if __name__ == "__main__":
    main()
