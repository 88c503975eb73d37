#!/usr/bin/python3
"""asyncio and uvloop running weft's benchmark workloads for the `make bench` table.

    peer.py bench asyncio|uvloop [min_seconds]   one JSON line per workload
    peer.py echo asyncio|uvloop PORT             an echo server (streams: read, write, drain)

Runs under /usr/bin/python3, where Debian's python3-uvloop is installed. The uvloop runs
use uvloop's loop through asyncio.Runner(loop_factory=uvloop.new_event_loop).
"""
import asyncio
import json
import os
import sys
import threading
import time


def report(peer, bench, value, unit="ns", note=None):
    line = {"bench": bench, "peer": peer, "value": round(value, 3), "unit": unit}
    if note:
        line["note"] = note
    print(json.dumps(line), flush=True)


async def measure(min_s, batch):
    """Awaits batch() (it returns the items it did) once, then until min_s has passed: ns/item."""
    await batch()
    start, items = time.perf_counter(), 0
    while time.perf_counter() - start < min_s:
        items += await batch()
    return (time.perf_counter() - start) * 1e9 / items


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


async def bench(peer, min_s):
    loop = asyncio.get_running_loop()

    # Resident memory per suspended task: 100k tasks waiting on one Event (measured first).
    n = 100_000
    before = rss_bytes()
    go = asyncio.Event()
    tasks = [asyncio.create_task(go.wait()) for _ in range(n)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    report(peer, "BM_IdleFiberRSS", (rss_bytes() - before) / n, "B")
    go.set()
    await asyncio.gather(*tasks)
    del tasks

    # A self-rescheduling call_soon chain of 100k callbacks.
    async def call_soon_chain():
        done = loop.create_future()
        left = 100_000

        def step():
            nonlocal left
            left -= 1
            if left > 0:
                loop.call_soon(step)
            else:
                done.set_result(None)

        loop.call_soon(step)
        await done
        return 100_000

    report(peer, "BM_CallSoon", await measure(min_s, call_soon_chain))

    # Two tasks ping-pong through sleep(0): one item = one yield.
    async def yields(k):
        for _ in range(k):
            await asyncio.sleep(0)

    async def ping_pong():
        k = 20_000
        other = asyncio.create_task(yields(k))
        await yields(k)
        await other
        return 2 * k

    report(peer, "BM_FiberYield", await measure(min_s, ping_pong))

    # create_task on a trivial coroutine and await it.
    async def one():
        return 1

    async def spawn_join():
        for _ in range(10_000):
            await asyncio.create_task(one())
        return 10_000

    report(peer, "BM_SpawnJoin", await measure(min_s, spawn_join))

    # A callback sets a future that a task awaits.
    async def future_set_await():
        for _ in range(10_000):
            f = loop.create_future()
            loop.call_soon(f.set_result, 1)
            await f
        return 10_000

    report(peer, "BM_FutureSetAwait", await measure(min_s, future_set_await))

    # create_task of 10k tasks that each yield once, then gather.
    async def yield_once(i):
        await asyncio.sleep(0)
        return i

    async def gather10k():
        await asyncio.gather(*[asyncio.create_task(yield_once(i)) for i in range(10_000)])
        return 10_000

    report(peer, "BM_Gather10k", await measure(min_s, gather10k))

    # call_later with scattered deadlines (within 1 ms), cancel half, fire the rest.
    # 200k timers rather than 1M to keep the run short; the row compares ns per timer.
    async def timers():
        k = 200_000
        fired = 0
        done = loop.create_future()

        def fire():
            nonlocal fired
            fired += 1
            if fired == k // 2:
                done.set_result(None)

        handles = [loop.call_later(((i * 7919) % 1_000_000) / 1e9, fire) for i in range(k)]
        for h in handles[::2]:
            h.cancel()
        await done
        return k

    report(peer, "BM_CallLaterCancel/1000000", await measure(min_s, timers), note="200k timers, not 1M")

    # Producer threads submit 50k callbacks through call_soon_threadsafe.
    for producers in (1, 2):
        async def threadsafe():
            total = 50_000
            ran = 0
            done = loop.create_future()

            def cb():
                nonlocal ran
                ran += 1
                if ran == total:
                    done.set_result(None)

            def produce(mine):
                for _ in range(mine):
                    loop.call_soon_threadsafe(cb)

            threads = [threading.Thread(target=produce, args=(total // producers + (p < total % producers),))
                       for p in range(producers)]
            for t in threads:
                t.start()
            await done
            for t in threads:
                t.join()
            return total

        report(peer, f"BM_CallSoonThreadsafe/producers:{producers}", await measure(min_s, threadsafe))

    # A task hands a trivial job to the default thread pool and awaits it.
    def job():
        return 1

    async def executor_round_trip():
        for _ in range(1_000):
            await loop.run_in_executor(None, job)
        return 1_000

    report(peer, "BM_ExecutorRoundTrip", await measure(min_s, executor_round_trip))


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def echo(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    mode, peer = sys.argv[1], sys.argv[2]
    factory = None
    if peer == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("uvloop not installed for this python", file=sys.stderr)
            sys.exit(3)
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        if mode == "echo":
            runner.run(echo(int(sys.argv[3])))
        else:
            runner.run(bench(peer, float(sys.argv[3]) if len(sys.argv) > 3 else 0.5))


if __name__ == "__main__":
    main()
