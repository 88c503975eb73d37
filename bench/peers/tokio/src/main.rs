// Tokio (current-thread runtime) running weft's benchmark workloads.
// `bench [min_seconds]` prints one JSON line per workload; `echo PORT` serves echo.
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::{Builder, Runtime};

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn report(bench: &str, value: f64, unit: &str) {
    println!("{{\"bench\": \"{}\", \"peer\": \"tokio\", \"value\": {:.3}, \"unit\": \"{}\"}}", bench, value, unit);
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

fn bench(min: Duration) {
    let rt = runtime();

    // Two tasks ping-pong through yield_now: one item = one yield.
    let n = 100_000u64;
    let ns = measure(min, || {
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
    });
    report("BM_FiberYield", ns, "ns");

    // Spawn a trivial task and await it, inside one long-lived block_on.
    let ns = measure(min, || {
        rt.block_on(async {
            for _ in 0..10_000 {
                black_box(tokio::spawn(async { 1 }).await.unwrap());
            }
        });
        10_000
    });
    report("BM_SpawnJoin", ns, "ns");

    // 10k tasks that each yield once, all awaited.
    let ns = measure(min, || {
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
    });
    report("BM_Gather10k", ns, "ns");

    // N std threads send 200k boxed closures over an unbounded mpsc; the runtime runs them.
    for producers in [1usize, 2] {
        let total = 200_000usize;
        let ns = measure(min, || {
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
            let ran = rt.block_on(async {
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
        });
        report(&format!("BM_CallSoonThreadsafe/producers:{}", producers), ns, "ns");
    }

    // A task hands a trivial job to the blocking pool and awaits it.
    let ns = measure(min, || {
        rt.block_on(async {
            for _ in 0..2_000 {
                black_box(tokio::task::spawn_blocking(|| 1).await.unwrap());
            }
        });
        2_000
    });
    report("BM_ExecutorRoundTrip", ns, "ns");

    // Resident memory per idle task: 100k tasks waiting on one semaphore.
    let n = 100_000;
    let per_task = rt.block_on(async {
        let before = rss_bytes();
        let go = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let go = go.clone();
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    go.acquire().await.unwrap().forget();
                })
            })
            .collect();
        while started.load(std::sync::atomic::Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let per = (rss_bytes() - before) as f64 / n as f64;
        go.add_permits(n);
        for h in handles {
            h.await.unwrap();
        }
        per
    });
    report("BM_IdleFiberRSS", per_task, "B");
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
        _ => {
            let min = args.get(2).map_or(0.5, |s| s.parse().unwrap());
            bench(Duration::from_secs_f64(min));
        }
    }
}
