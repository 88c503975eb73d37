// Go running weft's benchmark workloads for the `make bench` table.
// `bench [min_seconds]` prints one JSON line per workload; `echo PORT` serves echo;
// `tlsecho CERT KEY PORT` serves the same echo over crypto/tls (tls.go).
// Single-loop workloads run with GOMAXPROCS=1, the way weft's loop owns one thread; the
// cross-thread channel runs with the default GOMAXPROCS (one per core). The echo server
// keeps the default, which is 1 under `taskset -c` to one core.
// BM_SleepCancel runs in a fresh process (`sleepcancel N PROCS`) once with GOMAXPROCS=1 and
// once with the default; each line carries its "config" and scripts/bench_table.py quotes
// the faster one as Go's figure, footnoting which.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func report(bench string, value float64, unit string) {
	fmt.Printf("{\"bench\": \"%s\", \"peer\": \"go\", \"value\": %.3f, \"unit\": \"%s\"}\n", bench, value, unit)
}

// measure runs batch (which returns the items it did) once to warm up, then until min has
// passed; it returns nanoseconds per item.
func measure(min time.Duration, batch func() int) float64 {
	batch()
	start := time.Now()
	items := 0
	for time.Since(start) < min {
		items += batch()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(items)
}

func rssBytes() int64 {
	data, _ := os.ReadFile("/proc/self/statm")
	fields := strings.Fields(string(data))
	resident, _ := strconv.ParseInt(fields[1], 10, 64)
	return resident * int64(os.Getpagesize())
}

func bench(min time.Duration) {
	defaultProcs := runtime.GOMAXPROCS(1)

	// Resident memory per blocked goroutine: 100k goroutines waiting on one channel
	// (first, before other workloads leave freed heap behind).
	const idle = 100000
	runtime.GC()
	before := rssBytes()
	gate := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(idle)
	finished.Add(idle)
	for i := 0; i < idle; i++ {
		go func() {
			started.Done()
			<-gate
			finished.Done()
		}()
	}
	started.Wait()
	runtime.Gosched()
	report("BM_IdleFiberRSS", float64(rssBytes()-before)/idle, "B")
	close(gate)
	finished.Wait()

	// Two goroutines ping-pong through Gosched: one item = one yield.
	const n = 100000
	report("BM_FiberYield", measure(min, func() int {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
		wg.Wait()
		return 2 * n
	}), "ns")

	// Start a goroutine and wait for it.
	report("BM_SpawnJoin", measure(min, func() int {
		var wg sync.WaitGroup
		result := 0
		for i := 0; i < 10000; i++ {
			wg.Add(1)
			go func() { result++; wg.Done() }()
			wg.Wait()
		}
		return 10000
	}), "ns")

	// 10k goroutines that each yield once, all awaited.
	report("BM_Gather10k", measure(min, func() int {
		var wg sync.WaitGroup
		results := make([]int, 10000)
		wg.Add(10000)
		for i := 0; i < 10000; i++ {
			go func(i int) {
				runtime.Gosched()
				results[i] = i
				wg.Done()
			}(i)
		}
		wg.Wait()
		return 10000
	}), "ns")

	// 1M time.AfterFunc timers with scattered deadlines (within 1 ms), half stopped.
	const timers = 1000000
	report("BM_CallLaterCancel/1000000", measure(min, func() int {
		var fired int64
		done := make(chan struct{})
		all := make([]*time.Timer, timers)
		for i := range all {
			all[i] = time.AfterFunc(time.Duration((int64(i)*7919)%1000000), func() {
				if atomic.AddInt64(&fired, 1) == timers/2 {
					close(done)
				}
			})
		}
		for i := 0; i < timers; i += 2 {
			all[i].Stop()
		}
		<-done
		return timers
	}), "ns")

	// Producers send 200k funcs over a buffered channel; one goroutine runs them.
	runtime.GOMAXPROCS(defaultProcs)
	for _, producers := range []int{1, 2} {
		const total = 200000
		report(fmt.Sprintf("BM_CallSoonThreadsafe/producers:%d", producers), measure(min, func() int {
			work := make(chan func(*int), 4096)
			for p := 0; p < producers; p++ {
				mine := total / producers
				if p < total%producers {
					mine++
				}
				go func(mine int) {
					for i := 0; i < mine; i++ {
						work <- func(ran *int) { *ran++ }
					}
				}(mine)
			}
			ran := 0
			for ran < total {
				(<-work)(&ran)
			}
			return total
		}), "ns")
	}
	runtime.GOMAXPROCS(1)

	// 100k goroutines each blocked on its own timer, all cancelled: each configuration in
	// a fresh process, one cold shot, as weft's BM_SleepCancel runs a fresh loop.
	for _, procs := range []int{1, defaultProcs} {
		out, err := exec.Command(os.Args[0], "sleepcancel", strconv.Itoa(sleepCancelN), strconv.Itoa(procs)).Output()
		if err != nil {
			panic(fmt.Sprintf("sleepcancel child: %v", err))
		}
		var ns, rss float64
		fmt.Sscan(string(out), &ns, &rss)
		config := fmt.Sprintf("GOMAXPROCS=%d", procs)
		reportConfig(fmt.Sprintf("BM_SleepCancel/fibers:%d", sleepCancelN), config, ns, "ns")
		reportConfig(fmt.Sprintf("BM_SleepCancelRSS/fibers:%d", sleepCancelN), config, rss, "B")
		if procs == 1 && defaultProcs == 1 {
			break
		}
	}
}

const sleepCancelN = 100000

func reportConfig(bench, config string, value float64, unit string) {
	fmt.Printf("{\"bench\": \"%s\", \"peer\": \"go\", \"config\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}\n",
		bench, config, value, unit)
}

// sleepCancel is weft's BM_SleepCancel: n goroutines each wait on their own time.Timer an
// hour away or on the context's cancellation; once all have started, cancel() and wait for
// every one. Returns ns per goroutine and peak RSS growth per goroutine (bytes).
func sleepCancel(n int) (float64, float64) {
	runtime.GC()
	before := rssBytes()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var started, finished sync.WaitGroup
	var cancelled int64
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			t := time.NewTimer(time.Hour)
			started.Done()
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				atomic.AddInt64(&cancelled, 1)
			}
			finished.Done()
		}()
	}
	started.Wait()
	runtime.Gosched() // the last ones reach their select
	peak := rssBytes()
	cancel()
	finished.Wait()
	elapsed := time.Since(start)
	if cancelled != int64(n) {
		panic("a goroutine was not cancelled")
	}
	return float64(elapsed.Nanoseconds()) / float64(n), float64(peak-before) / float64(n)
}

func echo(port string) {
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		panic(err)
	}
	fmt.Printf("listening %s (GOMAXPROCS %d)\n", port, runtime.GOMAXPROCS(0))
	serveEcho(listener)
}

// serveEcho runs one goroutine per connection: read up to 64 KiB, write it back.
func serveEcho(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) { // Go sets TCP_NODELAY by default
			defer c.Close()
			buf := make([]byte, 64*1024)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(conn)
	}
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "echo" {
		echo(os.Args[2])
		return
	}
	if len(os.Args) > 3 && os.Args[1] == "sleepcancel" {
		n, _ := strconv.Atoi(os.Args[2])
		procs, _ := strconv.Atoi(os.Args[3])
		runtime.GOMAXPROCS(procs)
		ns, rss := sleepCancel(n)
		fmt.Println(ns, rss)
		return
	}
	if len(os.Args) > 4 && os.Args[1] == "tlsecho" {
		tlsEcho(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	min := 0.5
	if len(os.Args) > 2 {
		min, _ = strconv.ParseFloat(os.Args[2], 64)
	}
	bench(time.Duration(min * float64(time.Second)))
}
