// Tokio running weft's benchmark workloads, in each configuration a Tokio user could
// plausibly pick for it, every one measured in the same run:
//   current_thread+enable_all   Builder::new_current_thread().enable_all(): the I/O driver
//                               is polled (an epoll_wait) whenever the scheduler yields;
//   current_thread              no drivers (enable_time() only where a workload needs timers,
//                               named current_thread+enable_time);
//   multi_thread                Builder::new_multi_thread() (one worker per core), for the
//                               cross-thread rows, the consumer spawned onto a worker.
// Each line carries its "config"; scripts/bench_table.py quotes the fastest configuration's
// median as Tokio's figure and footnotes which one it was, keeping the others in summary.json.
// `bench [min_seconds]` prints one JSON line per workload and configuration; `echo PORT`
// serves echo (current_thread+enable_all, the I/O driver being needed there). Workloads
// measured from a fresh process (idle RSS, sleep+cancel) re-run this binary as
// `rss CONFIG` / `sleepcancel CONFIG N`.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::{Builder, Runtime};

#[derive(Clone, Copy, PartialEq)]
enum Config {
    CtAll,
    CtBare,
    CtTime,
    Mt,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::CtAll => "current_thread+enable_all",
            Config::CtBare => "current_thread",
            Config::CtTime => "current_thread+enable_time",
            Config::Mt => "multi_thread",
        }
    }
    fn parse(s: &str) -> Config {
        [Config::CtAll, Config::CtBare, Config::CtTime, Config::Mt].into_iter().find(|c| c.name() == s).unwrap()
    }
    fn runtime(self) -> Runtime {
        match self {
            Config::CtAll => Builder::new_current_thread().enable_all().build().unwrap(),
            Config::CtBare => Builder::new_current_thread().build().unwrap(),
            Config::CtTime => Builder::new_current_thread().enable_time().build().unwrap(),
            Config::Mt => Builder::new_multi_thread().build().unwrap(),
        }
    }
}

fn runtime() -> Runtime {
    Config::CtAll.runtime()
}

fn report(bench: &str, config: Config, value: f64, unit: &str) {
    println!(
        "{{\"bench\": \"{}\", \"peer\": \"tokio\", \"config\": \"{}\", \"value\": {:.3}, \"unit\": \"{}\"}}",
        bench,
        config.name(),
        value,
        unit
    );
}

// Runs `fut` on `rt`: on a multi-thread runtime spawned onto a worker (block_on's own future
// would run on this thread, outside the workers), else in block_on itself.
fn on<F>(rt: &Runtime, config: Config, fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    if config == Config::Mt {
        rt.block_on(async move { tokio::spawn(fut).await.unwrap() })
    } else {
        rt.block_on(fut)
    }
}

// Runs `batch` (which returns the items it did) until `min` has passed after one warm-up
// batch; returns nanoseconds per item.
fn measure(min: Duration, mut batch: impl FnMut() -> u64) -> f64 {
    batch();
    let start = Instant::now();
    let mut items = 0u64;
    while start.elapsed() < min {
        items += batch();
    }
    start.elapsed().as_nanos() as f64 / items as f64
}

// std::hint::black_box is newer than Debian 12's rustc 1.63.
fn black_box<T>(x: T) -> T {
    let y = unsafe { std::ptr::read_volatile(&x) };
    std::mem::forget(x);
    y
}

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident: i64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * 4096
}

// Two tasks ping-pong through yield_now: one item = one yield.
fn fiber_yield(rt: &Runtime, min: Duration) -> f64 {
    let n = 100_000u64;
    measure(min, || {
        rt.block_on(async {
            let other = tokio::spawn(async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            });
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
            other.await.unwrap();
        });
        2 * n
    })
}

// Spawn a trivial task and await it, inside one long-lived block_on.
fn spawn_join(rt: &Runtime, min: Duration) -> f64 {
    measure(min, || {
        rt.block_on(async {
            for _ in 0..10_000 {
                black_box(tokio::spawn(async { 1 }).await.unwrap());
            }
        });
        10_000
    })
}

// 10k tasks that each yield once, all awaited.
fn gather10k(rt: &Runtime, min: Duration) -> f64 {
    measure(min, || {
        rt.block_on(async {
            let handles: Vec<_> = (0..10_000)
                .map(|i| {
                    tokio::spawn(async move {
                        tokio::task::yield_now().await;
                        i
                    })
                })
                .collect();
            for h in handles {
                black_box(h.await.unwrap());
            }
        });
        10_000
    })
}

// N std threads send 200k boxed closures over an unbounded mpsc; the runtime runs them.
fn call_soon_threadsafe(rt: &Runtime, config: Config, producers: usize, min: Duration) -> f64 {
    let total = 200_000usize;
    measure(min, || {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Box<dyn FnOnce(&mut usize) + Send>>();
        let threads: Vec<_> = (0..producers)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mine = total / producers + usize::from(p < total % producers);
                    for _ in 0..mine {
                        tx.send(Box::new(|ran: &mut usize| *ran += 1)).map_err(|_| ()).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let ran = on(rt, config, async move {
            let mut ran = 0usize;
            while let Some(f) = rx.recv().await {
                f(&mut ran);
                if ran == total {
                    break;
                }
            }
            ran
        });
        for t in threads {
            t.join().unwrap();
        }
        ran as u64
    })
}

// A task hands a trivial job to the blocking pool and awaits it.
fn executor_round_trip(rt: &Runtime, config: Config, min: Duration) -> f64 {
    measure(min, || {
        on(rt, config, async {
            for _ in 0..2_000 {
                black_box(tokio::task::spawn_blocking(|| 1).await.unwrap());
            }
        });
        2_000
    })
}

// Resident memory per idle task: 100k tasks waiting on one semaphore. Run in a fresh
// process (`rss CONFIG`), so neither configuration reuses the other's freed heap.
fn idle_rss(config: Config) -> f64 {
    let rt = config.runtime();
    let n = 100_000;
    rt.block_on(async {
        let before = rss_bytes();
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let go = go.clone();
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    go.acquire().await.unwrap().forget();
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let per = (rss_bytes() - before) as f64 / n as f64;
        go.add_permits(n);
        for h in handles {
            h.await.unwrap();
        }
        per
    })
}

// weft's BM_SleepCancel: n tasks each sleep on their own timer an hour away; once all have
// registered it, every one is aborted (JoinHandle::abort, Tokio's cancellation) and awaited.
// One cold shot in a fresh process (`sleepcancel CONFIG N`), runtime built and dropped inside
// the timing as weft's run is; returns (ns per task, peak RSS growth per task in bytes).
fn sleep_cancel(config: Config, n: usize) -> (f64, f64) {
    let before = rss_bytes();
    let start = Instant::now();
    let rt = config.runtime();
    let peak = rt.block_on(async move {
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let peak = rss_bytes();
        for h in &handles {
            h.abort();
        }
        let mut cancelled = 0;
        for h in handles {
            cancelled += usize::from(h.await.unwrap_err().is_cancelled());
        }
        assert_eq!(cancelled, n);
        peak
    });
    drop(rt);
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    (ns, (peak - before) as f64 / n as f64)
}

// Runs this binary again with `args` and parses the numbers it prints on one line.
fn child(args: &[&str]) -> Vec<f64> {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe).args(args).output().unwrap();
    assert!(out.status.success(), "{:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().map(|v| v.parse().unwrap()).collect()
}

const SLEEP_CANCEL_N: usize = 100_000;

fn bench(min: Duration) {
    // The I/O driver (enable_all) against none: configurations alternate within each
    // workload, so drift hits both alike.
    let ct = [Config::CtAll, Config::CtBare];
    let rts: Vec<(Config, Runtime)> = ct.iter().map(|&c| (c, c.runtime())).collect();
    for (c, rt) in &rts {
        report("BM_FiberYield", *c, fiber_yield(rt, min), "ns");
    }
    for (c, rt) in rts.iter().rev() {
        report("BM_SpawnJoin", *c, spawn_join(rt, min), "ns");
    }
    for (c, rt) in &rts {
        report("BM_Gather10k", *c, gather10k(rt, min), "ns");
    }
    // Cross-thread rows: the current-thread runtimes and the multi-thread one.
    let mt = Config::Mt.runtime();
    let all: Vec<(Config, &Runtime)> =
        rts.iter().map(|(c, rt)| (*c, rt)).chain(std::iter::once((Config::Mt, &mt))).collect();
    for producers in [1usize, 2] {
        for (c, rt) in &all {
            report(
                &format!("BM_CallSoonThreadsafe/producers:{}", producers),
                *c,
                call_soon_threadsafe(rt, *c, producers, min),
                "ns",
            );
        }
    }
    for (c, rt) in all.iter().rev() {
        report("BM_ExecutorRoundTrip", *c, executor_round_trip(rt, *c, min), "ns");
    }
    drop(all);
    drop(mt);
    drop(rts);
    for c in ct {
        report("BM_IdleFiberRSS", c, child(&["rss", c.name()])[0], "B");
    }
    let n = SLEEP_CANCEL_N.to_string();
    for c in [Config::CtTime, Config::CtAll] {
        let r = child(&["sleepcancel", c.name(), &n]);
        report(&format!("BM_SleepCancel/fibers:{}", n), c, r[0], "ns");
        report(&format!("BM_SleepCancelRSS/fibers:{}", n), c, r[1], "B");
    }
}

fn echo(port: u16) {
    runtime().block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        println!("listening {}", port);
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if socket.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("echo") => echo(args[2].parse().unwrap()),
        Some("rss") => println!("{}", idle_rss(Config::parse(&args[2]))),
        Some("sleepcancel") => {
            let (ns, rss) = sleep_cancel(Config::parse(&args[2]), args[3].parse().unwrap());
            println!("{} {}", ns, rss);
        }
        _ => {
            let min = args.get(2).map_or(0.5, |s| s.parse().unwrap());
            bench(Duration::from_secs_f64(min));
        }
    }
}
