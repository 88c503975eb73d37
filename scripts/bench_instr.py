#!/usr/bin/python3
"""Instructions and syscalls per operation, for `make bench-instr` (issue 18).

    bench_instr.py BUILD [--out DIR] [--only REGEX] [--no-strace] [--keep]

Times on a shared VM drift and it has no hardware counters; instruction counts do not
drift. For each row (weft's benchmark and the C++ peers' same workload) this runs the
Google Benchmark binary once under valgrind's callgrind and once under strace, with
--benchmark_filter='^NAME$'.

What is counted: the benchmark's timed loop only. Callgrind dumps its counters after
benchmark::State::StartKeepRunning and before FinishKeepRunning (the two calls that
bracket `for (auto _ : state)`), so the last dump of the run holds exactly the iterations
the JSON output reports (`iterations`), with what the benchmark function does outside its
loop (a loop, a runtime, a pool set up once) and the process's own start left out. What
an iteration does inside the loop is counted: e.g. BM_CallSoonThreadsafe makes its loop
and starts its producer threads in every iteration (amortised over 200k callbacks). For
comparison, rows with --benchmark_min_time=0 (one iteration) also show the whole process
minus a baseline run of the same binary whose filter matches nothing: that figure
includes the benchmark's set-up.
Operations per iteration come from the JSON's items_per_second (SetItemsProcessed; items =
rate x time) and are checked against the table below. Rows whose iteration is one
operation run with a short --benchmark_min_time so that thousands of iterations share the
dump (the first, cold iterations fall in earlier trials, which are not counted).

Syscalls: strace -f over the same run; Google Benchmark reads the thread's CPU clock
(clock_gettime(CLOCK_THREAD_CPUTIME_ID), a real syscall, not vDSO) when the timed loop
starts and stops, so the syscalls of every thread between the last two such reads are the
last trial's. Divided by its operations. strace slows each syscall by tens of
microseconds, so rows where threads race (a loop sleeping or not before a producer's
next push) see more sleeps and wake-ups under strace than at full speed: read those
as an upper bound.

Callgrind serialises threads: cross-thread rows count every thread's instructions (a
spinning thread's too) but not their timing, and how often a consumer finds its queue
empty depends on where callgrind's thread slices fall (the spinning queue floors once
measured 180 and 4,500 instructions per item in two runs). So those rows (`producers:`)
and the executor round trip (its pool thread yields while it waits) run three times under
callgrind and report their lowest figure, with all three beside it.
Cache-line contention does not show in instruction counts at all.

Output: one table (row, weft instr/op, peer, peer instr/op, ratio = peer / weft: above 1
means weft executes fewer instructions), the syscalls per op of each row, and for each
weft row its top functions by self and inclusive instructions (from callgrind's dump),
written to OUTDIR/instr.md, OUTDIR/instr.json and OUTDIR/instr_hot.txt (OUTDIR defaults
to bench/results/<UTC stamp>/). Standard library only.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# min_time for rows whose one iteration is one operation (seconds, as the benchmark sees
# them under callgrind or strace: a few thousand iterations).
SHORT = 0.1

# (name, binary, min_time, ops per iteration as in the source). The JSON's figure wins;
# a disagreement is printed.
WEFT = [
    ("BM_CallSoon", "core_bench", 0, 100_000),
    ("BM_CallLaterCancel/1000000", "core_bench", 0, 1_000_000),
    ("BM_CallSoonThreadsafe/producers:1/real_time", "core_bench", 0, 200_000),
    ("BM_CallSoonThreadsafe/producers:2/real_time", "core_bench", 0, 200_000),
    ("BM_FiberYield", "fiber_bench", 0, 200_000),
    ("BM_ContextSwitch", "fiber_bench", SHORT, 1),
    ("BM_SpawnJoin", "fiber_bench", SHORT, 1),
    ("BM_FutureSetAwait", "fiber_bench", SHORT, 1),
    ("BM_Gather10k", "fiber_bench", 0, 10_000),
    ("BM_ExecutorRoundTrip/real_time", "thread_bench", 3 * SHORT, 1),  # real time: slow under callgrind
]

# weft row -> [(peer label, name, binary, min_time, ops per iteration)]
PEERS = {
    "BM_CallSoon": [("Asio post", "BM_CallSoon_Asio", "asio_peer_bench", 0, 100_000)],
    "BM_CallLaterCancel/1000000": [
        ("Asio steady_timer", "BM_CallLaterCancel_Asio/1000000", "asio_peer_bench", 0, 1_000_000),
        ("libuv timer", "BM_CallLaterCancel_Libuv/1000000", "libuv_peer_bench", 0, 1_000_000)],
    "BM_FiberYield": [
        ("Boost.Fiber yield", "BM_FiberYield_BoostFiber", "boost_fiber_peer_bench", 0, 200_000),
        ("Asio spawn + post", "BM_FiberYield_Asio", "asio_peer_bench", 0, 200_000)],
    "BM_SpawnJoin": [
        ("Boost.Fiber spawn+join", "BM_SpawnJoin_BoostFiber", "boost_fiber_peer_bench", SHORT, 1),
        ("Asio spawn (x1000)", "BM_SpawnJoin_Asio", "asio_peer_bench", 0, 1000)],
}
for _p in (1, 2):
    PEERS[f"BM_CallSoonThreadsafe/producers:{_p}/real_time"] = [
        ("Asio post, cross-thread", f"BM_AsioPostCrossThread/producers:{_p}/real_time", "thread_bench", 0, 200_000),
        ("floor: mutex+deque, spinning", f"BM_CallSoonThreadsafe_MutexDeque/producers:{_p}/real_time",
         "queue_floor_bench", 0, 200_000),
        ("floor: moodycamel, spinning", f"BM_CallSoonThreadsafe_Moodycamel/producers:{_p}/real_time",
         "queue_floor_bench", 0, 200_000)]

NOTHING = "^NO_BENCHMARK_MATCHES_THIS$"
HOT_FUNCTIONS = 15
RUNS_CROSS_THREAD = 3
CROSS_THREAD = re.compile(r"producers:|ExecutorRoundTrip")


def measured(results):
    """Every row, weft's and the peers', that has figures (not missing, no error)."""
    for res in results:
        for r in [res["weft"]] + res["peers"]:
            if not r.get("missing") and "error" not in r:
                yield r


def note(msg):
    print(f"bench-instr: {msg}", file=sys.stderr, flush=True)


TIMEOUT = 300  # seconds for one run under valgrind or strace


def run_limited(cmd, stderr):
    """Runs cmd in a process group of its own; kills that group after TIMEOUT seconds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        note(f"timed out after {TIMEOUT} s: {' '.join(cmd[:2])} ...")
        os.killpg(proc.pid, 9)
        proc.wait()
        return False
    return True


def gb_args(name, min_time, json_out):
    return [f"--benchmark_filter=^{name}$", f"--benchmark_min_time={min_time}",
            f"--benchmark_out={json_out}", "--benchmark_out_format=json"]


def read_json(path, name):
    """(iterations, ops per iteration or None) of the benchmark `name` in a JSON output."""
    with open(path) as f:
        try:
            data = json.load(f)
        except ValueError:  # empty or cut short: the run was killed (TIMEOUT) or crashed
            return None, None
    for b in data.get("benchmarks", []):
        if b.get("name") == name and b.get("run_type", "iteration") == "iteration":
            iters = int(b["iterations"])
            ops = None
            rate = b.get("items_per_second")
            if rate:
                scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
                # items_per_second = items / seconds, seconds being real time for
                # UseRealTime benchmarks, CPU time otherwise; either gives an integer.
                key = "real_time" if name.endswith("/real_time") else "cpu_time"
                items = rate * b[key] * scale * iters
                ops = max(1, round(items / iters))
            return iters, ops
    raise RuntimeError(f"{name}: not in the JSON output ({path})")


def callgrind_totals(path):
    """Ir total of one callgrind output file."""
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def dumps_in_order(base):
    """The files of one callgrind run, in dump order: base.1, base.2, ..., then base."""
    parts = []
    for p in glob.glob(base + ".*"):
        suffix = p[len(base) + 1:]
        if suffix.isdigit():
            parts.append((int(suffix), p))
    files = [p for _, p in sorted(parts)]
    if os.path.exists(base):
        files.append(base)
    return files


def trigger(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("desc: Trigger:"):
                return line.split(":", 2)[2].strip()
            if line.startswith("totals:") or line.startswith("fn="):
                break
    return ""


def run_callgrind(binary, args, base, tmp):
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={base}",
           "--dump-after=benchmark::State::StartKeepRunning*",
           "--dump-before=benchmark::State::FinishKeepRunning*"] + [binary] + args
    with open(os.path.join(tmp, "valgrind.log"), "a") as log:
        run_limited(cmd, log)
    return dumps_in_order(base)


class Runner:
    def __init__(self, build, tmp, use_strace):
        self.bench = os.path.join(build, "bench")
        self.tmp = tmp
        self.use_strace = use_strace
        self.baselines = {}
        self.counter = 0

    def path(self, binary):
        p = os.path.join(self.bench, binary)
        return p if os.access(p, os.X_OK) else None

    def fresh(self, stem):
        self.counter += 1
        return os.path.join(self.tmp, f"{self.counter:03d}-{stem}")

    def baseline(self, binary):
        """Whole-process instructions of the binary running no benchmark."""
        if binary not in self.baselines:
            base = self.fresh(binary + "-baseline.cg")
            files = run_callgrind(self.path(binary), [f"--benchmark_filter={NOTHING}"], base, self.tmp)
            self.baselines[binary] = sum(callgrind_totals(f) for f in files)
        return self.baselines[binary]

    def measure(self, name, binary, min_time, table_ops):
        exe = self.path(binary)
        if exe is None:
            return {"name": name, "binary": binary, "missing": True}
        stem = re.sub(r"[^A-Za-z0-9]+", "_", name)
        t0 = time.monotonic()
        # Threads run one at a time under callgrind, in slices; how often a consumer finds
        # its queue empty (and sleeps, or spins) depends on where the slices fall, so the
        # cross-thread rows run RUNS_CROSS_THREAD times and keep the run with the fewest.
        runs = RUNS_CROSS_THREAD if CROSS_THREAD.search(name) else 1
        best, figures = None, []
        for _ in range(runs):
            one = self.callgrind_once(exe, name, binary, min_time, table_ops, stem)
            if "error" in one:
                return one
            figures.append(one["instr_per_op"])
            if best is None or one["instr_per_op"] < best["instr_per_op"]:
                best = one
        row = best
        if runs > 1:
            row["instr_per_op_runs"] = figures
        row["callgrind_seconds"] = round(time.monotonic() - t0, 1)
        if self.use_strace:
            row.update(self.strace(exe, name, min_time, stem))
        return row

    def callgrind_once(self, exe, name, binary, min_time, table_ops, stem):
        js = self.fresh(stem + ".json")
        base = self.fresh(stem + ".cg")
        files = run_callgrind(exe, gb_args(name, min_time, js), base, self.tmp)
        if not os.path.exists(js):
            return {"name": name, "binary": binary, "error": "no JSON output (crashed under valgrind?)"}
        iters, ops = read_json(js, name)
        if iters is None:
            return {"name": name, "binary": binary, "error": "no complete JSON output (timed out or crashed)"}
        if ops is None:
            ops = table_ops
        elif ops != table_ops:
            note(f"{name}: the JSON says {ops} operations per iteration, the script's table {table_ops}")
        # The dumps alternate: before the first trial's loop | its loop | between trials |
        # the next loop | ... | after. The last dump made on entering FinishKeepRunning is
        # the last trial's loop: the iterations the JSON reports.
        timed = [f for f in files if "FinishKeepRunning" in trigger(f)]
        if not timed:
            return {"name": name, "binary": binary, "error": "callgrind made no dump at FinishKeepRunning"}
        loop_file = timed[-1]
        loop_ir = callgrind_totals(loop_file)
        total_ops = iters * ops
        row = {"name": name, "binary": binary, "iterations": iters, "ops_per_iteration": ops,
               "min_time": min_time, "loop_instructions": loop_ir,
               "instr_per_op": loop_ir / total_ops, "callgrind_file": loop_file}
        if min_time == 0 and iters == 1:
            whole = sum(callgrind_totals(f) for f in files)
            row["process_minus_baseline_per_op"] = (whole - self.baseline(binary)) / total_ops
        return row

    def strace(self, exe, name, min_time, stem):
        js = self.fresh(stem + ".strace.json")
        trace = self.fresh(stem + ".strace")
        t0 = time.monotonic()
        run_limited(["strace", "-f", "-qq", "-o", trace, exe] + gb_args(name, min_time, js),
                    subprocess.DEVNULL)
        out = {"strace_seconds": None}
        if not os.path.exists(js) or not os.path.exists(trace):
            out["strace_error"] = "no output"
            return out
        iters, ops = read_json(js, name)
        if iters is None:
            out["strace_error"] = "no complete JSON output (timed out or crashed)"
            return out
        if ops is None:
            out["strace_error"] = "the benchmark reports no items per iteration"
            return out
        counts, error = count_window(trace)
        os.unlink(trace)
        out["strace_seconds"] = round(time.monotonic() - t0, 1)
        if error:
            out["strace_error"] = error
            return out
        total_ops = iters * ops
        out["strace_iterations"] = iters
        out["syscalls_per_op"] = {k: v / total_ops for k, v in
                                  sorted(counts.items(), key=lambda kv: -kv[1])}
        out["syscalls_total_per_op"] = sum(counts.values()) / total_ops
        return out


CALL = re.compile(r"^(\d+)\s+([a-z_0-9]+)\((.*)")


def count_window(trace):
    """Syscalls of every thread between the last two reads of the CPU clock by the main
    thread (the last trial's timed loop), by name, the clock reads left out."""
    events = []  # (pid, name, is_marker)
    main = None
    with open(trace, errors="replace") as f:
        for line in f:
            m = CALL.match(line)
            if not m:
                continue  # "<... resumed>", signals, exits
            pid, sc, rest = int(m.group(1)), m.group(2), m.group(3)
            if main is None:
                main = pid
            marker = pid == main and sc == "clock_gettime" and "CPUTIME_ID" in rest
            events.append((pid, sc, marker))
    marks = [i for i, e in enumerate(events) if e[2]]
    if len(marks) < 2:
        return None, f"{len(marks)} CPU-clock reads in the main thread (expected 2 per trial)"
    lo, hi = marks[-2], marks[-1]
    counts = {}
    for pid, sc, marker in events[lo + 1:hi]:
        if marker:
            continue
        counts[sc] = counts.get(sc, 0) + 1
    return counts, None


FRAMEWORK = re.compile(r"^(benchmark::|main$|\(below main\)|__libc_start|_start$|0x[0-9a-f]+$|start_thread$|clone3?$)")


def profile(path):
    """{function: [self Ir, inclusive Ir]} of one callgrind dump, read directly (callgrind_annotate
    3.19 gives the functions still on the stack at a mid-run dump, like main, all of the
    dump as self cost). Inclusive = self + what the function's calls cost, so recursion and
    fiber switches (which callgrind sees as odd calls and returns) can count twice."""
    names, objs = {}, {}
    prof = {}
    fn = None
    ob = ""
    in_call = False

    def name_of(table, value):
        m = re.match(r"^\((\d+)\)\s*(.*)$", value)
        if not m:
            return value
        if m.group(2):
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), value)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                if fn is not None:
                    entry = prof.setdefault(fn, [0, 0])
                    if in_call:
                        entry[1] += ir
                    else:
                        entry[0] += ir
                        entry[1] += ir
                in_call = False
            elif line.startswith("fn="):
                base = name_of(names, line[3:])
                fn = f"{base} [{os.path.basename(ob)}]" if ob else base
                in_call = False
            elif line.startswith("ob="):
                ob = name_of(objs, line[3:])
            elif line.startswith("cob="):
                name_of(objs, line[4:])
            elif line.startswith("cfn="):
                name_of(names, line[4:])
            elif line.startswith("calls="):
                in_call = True
    return prof


def hot_functions(path, total_ops, inclusive):
    """Top functions of one dump: (instructions per op, percent of the dump, function)."""
    prof = profile(path)
    total = callgrind_totals(path)
    key = 1 if inclusive else 0
    rows = []
    for fn, costs in sorted(prof.items(), key=lambda kv: -kv[1][key]):
        if inclusive and FRAMEWORK.match(fn.split(" [")[0]):
            continue
        if costs[key] == 0:
            break
        rows.append((costs[key] / total_ops, 100.0 * costs[key] / total if total else 0.0, fn))
        if len(rows) >= HOT_FUNCTIONS:
            break
    return rows


def fmt(x, digits=1):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def syscall_summary(row, top=4):
    if "syscalls_per_op" not in row:
        return row.get("strace_error", "—") if "strace_error" in row else "—"
    items = [f"{k} {v:.3g}/op" for k, v in list(row["syscalls_per_op"].items())[:top]]
    return ", ".join(items) if items else "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--out", help="output directory (default bench/results/<stamp>/)")
    ap.add_argument("--only", help="regex: run only weft rows whose name matches")
    ap.add_argument("--no-strace", action="store_true", help="instructions only")
    ap.add_argument("--keep", action="store_true", help="keep the callgrind and JSON files (printed)")
    args = ap.parse_args()

    for tool in ["valgrind"] + ([] if args.no_strace else ["strace"]):
        if not shutil.which(tool):
            sys.exit(f"bench-instr: {tool} is not installed (scripts/install-deps.sh --instr)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or os.path.join(ROOT, "bench", "results", stamp)
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="weft-instr-")
    runner = Runner(args.build, tmp, not args.no_strace)

    started = time.monotonic()
    results = []
    for name, binary, min_time, ops in WEFT:
        if args.only and not re.search(args.only, name):
            continue
        note(f"{name} ...")
        weft = runner.measure(name, binary, min_time, ops)
        peers = []
        for label, pname, pbin, pmin, pops in PEERS.get(name, []):
            note(f"  peer {pname} ...")
            r = runner.measure(pname, pbin, pmin, pops)
            r["label"] = label
            peers.append(r)
        results.append({"weft": weft, "peers": peers})
    elapsed = time.monotonic() - started

    machine = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                machine = line.split(":", 1)[1].strip()
    except OSError:
        pass

    def ipo(r):
        return r.get("instr_per_op") if not r.get("missing") and "error" not in r else None

    def why(r):
        return "not built" if r.get("missing") else r.get("error", "")

    md = []
    md.append(f"# Instructions and syscalls per operation ({stamp}, {machine or 'unknown CPU'})")
    md.append("")
    md.append("Callgrind over the benchmark's timed loop only (Google Benchmark's "
              "StartKeepRunning..FinishKeepRunning; set-up outside the loop excluded, set-up "
              "inside an iteration included); ratio = peer / weft (above 1: weft executes fewer "
              "instructions). Syscalls: strace -f over the same window. Last table: the "
              "iterations counted and, for one-iteration runs, the whole process minus a run "
              "of the same binary with no benchmark (set-up included) beside the loop's figure. "
              "Cross-thread rows (`producers:`, the executor round trip): callgrind runs threads one at a time, so how "
              "often a consumer finds its queue empty (weft and Asio sleep; the floors spin, "
              "which costs instructions) depends on its slices: each runs "
              f"{RUNS_CROSS_THREAD} times and shows its lowest figure, all runs in the last table; "
              "no cache-line contention shows in instruction counts.")
    md.append("")
    md.append("| row | weft instr/op | peer | peer instr/op | ratio |")
    md.append("|---|---:|---|---:|---:|")
    for res in results:
        w = res["weft"]
        wv = ipo(w)
        first = True
        for p in res["peers"] or [None]:
            cells = [f"`{w['name']}`", fmt(wv) if wv is not None else why(w)] if first else ["", ""]
            if p is None:
                cells += ["—", "—", "—"]
            else:
                pv = ipo(p)
                cells += [p["label"], fmt(pv) if pv is not None else why(p),
                          f"{pv / wv:.2f}×" if pv is not None and wv else "—"]
            md.append("| " + " | ".join(cells) + " |")
            first = False
    md.append("")
    if runner.use_strace:
        md.append("| row | syscalls/op | top syscalls per op (last trial's timed loop) |")
        md.append("|---|---:|---|")
        for r in measured(results):
            total = r.get("syscalls_total_per_op")
            md.append(f"| `{r['name']}` | {'—' if total is None else f'{total:.3g}'} | {syscall_summary(r)} |")
        md.append("")
    md.append("| row | iterations counted | ops/iteration | instr/op, loop | runs (cross-thread) | instr/op, whole process − baseline | callgrind s | strace s |")
    md.append("|---|---:|---:|---:|---|---:|---:|---:|")
    for r in measured(results):
        md.append(f"| `{r['name']}` | {r['iterations']} | {r['ops_per_iteration']} | "
                  f"{fmt(r['instr_per_op'])} | "
                  f"{', '.join(fmt(x) for x in r.get('instr_per_op_runs', [])) or '—'} | "
                  f"{fmt(r.get('process_minus_baseline_per_op'))} | "
                  f"{r['callgrind_seconds']} | {r.get('strace_seconds') or '—'} |")
    md.append("")
    md.append(f"{elapsed:.0f} s in all. Hot functions of the weft rows: instr_hot.txt.")
    text = "\n".join(md) + "\n"
    print(text)
    with open(os.path.join(out, "instr.md"), "w") as f:
        f.write(text)

    hot = [f"Top {HOT_FUNCTIONS} functions per weft row, instructions per operation over the "
           f"timed loop (read from callgrind's dump of the last trial's loop; inclusive figures are "
           f"approximate across recursion and fiber switches; the benchmark framework's frames "
           f"are left out of the inclusive list). {machine}", ""]
    for res in results:
        w = res["weft"]
        if ipo(w) is None:
            continue
        total_ops = w["iterations"] * w["ops_per_iteration"]
        hot.append(f"== {w['name']}: {w['instr_per_op']:.1f} instr/op "
                   f"({w['iterations']} iterations x {w['ops_per_iteration']} ops)")
        for inclusive in (False, True):
            hot.append("-- " + ("inclusive" if inclusive else "self"))
            for per_op, pct, fn in hot_functions(w["callgrind_file"], total_ops, inclusive):
                hot.append(f"{per_op:10.1f}/op {pct:6.2f}%  {fn}")
        hot.append("")
    with open(os.path.join(out, "instr_hot.txt"), "w") as f:
        f.write("\n".join(hot) + "\n")

    for res in results:
        for r in [res["weft"]] + res["peers"]:
            if not args.keep:
                r.pop("callgrind_file", None)
    with open(os.path.join(out, "instr.json"), "w") as f:
        json.dump({"stamp": stamp, "machine": machine, "seconds": round(elapsed, 1),
                   "baselines": runner.baselines, "rows": results}, f, indent=1)
    if args.keep:
        print(f"callgrind and JSON files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"written: {os.path.relpath(out, ROOT)}/instr.md, instr.json, instr_hot.txt")


if __name__ == "__main__":
    main()
