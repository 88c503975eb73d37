// ProcessPool (concurrent.futures.ProcessPoolExecutor): CPU work in isolated worker
// processes, results back as loop futures. Jobs are functions registered by name that
// take and return byte strings (serialise what you need into them). Workers are forked
// once, when the pool starts, and talk to the loop over socketpairs watched by the
// reactor. A worker that crashes or is killed fails its job with BrokenProcessPool and
// is replaced; every worker is reaped, so no zombies are left.
//
// Fork-safety: workers are forked from the loop thread. As with Python's fork start
// method, start pools before other threads exist (or while they hold no locks), and
// register every function before starting the pool (the registry is copied by fork).
// Loop thread only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <weft/error.hpp>
#include <weft/future.hpp>
#include <weft/io_watch.hpp>

namespace weft {

// A worker process died (crashed, was killed) while running the job.
class BrokenProcessPool : public Error {
public:
    explicit BrokenProcessPool(const std::string& what)
        : Error(std::make_error_code(std::errc::broken_pipe), what) {}
};

// The job's function threw in the worker: carries its what().
class ProcessJobError : public Error {
public:
    explicit ProcessJobError(const std::string& what)
        : Error(std::make_error_code(std::errc::io_error), what) {}
};

using ProcessFunction = std::string (*)(std::string_view input);

// Makes fn callable in worker processes as `name`. Call before starting a pool.
void register_process_function(const std::string& name, ProcessFunction fn);

class ProcessPool {
public:
    // Forks `workers` processes (0: one per hardware thread) on the running loop.
    explicit ProcessPool(size_t workers = 0);
    ~ProcessPool();  // shutdown(true)
    ProcessPool(const ProcessPool&) = delete;
    ProcessPool& operator=(const ProcessPool&) = delete;

    // Queues a call of the registered function `name` with `input`; the future gets its
    // output, ProcessJobError if it threw (or is unknown), BrokenProcessPool if the worker
    // died. Cancelling the future drops a job that has not been sent to a worker.
    Future<std::string> submit(const std::string& name, std::string input);

    // Stops the workers. wait: queued jobs are still run first (awaited from the loop);
    // otherwise they are cancelled. Idempotent.
    void shutdown(bool wait = true);
    size_t size() const noexcept { return workers_.size(); }
    std::vector<pid_t> pids() const;

private:
    struct Job {
        std::string name;
        std::string input;
        Future<std::string> result;
    };
    struct Worker {
        pid_t pid = -1;
        int fd = -1;
        IoWatch watch;
        std::string inbox;       // response bytes read so far
        std::unique_ptr<Job> job;  // in flight, or null when idle
    };

    void spawn_worker(Worker& w);
    void dispatch();
    void on_readable(size_t index);
    void retire(Worker& w, const std::string& why);  // reap; fail its job; replace
    void stop_worker(Worker& w) noexcept;

    Loop* loop_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::deque<std::unique_ptr<Job>> pending_;
    bool closed_ = false;
};

}  // namespace weft
