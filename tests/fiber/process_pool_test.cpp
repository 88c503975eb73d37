// ProcessPool: results and errors from worker processes, a crashing worker fails its job
// with BrokenProcessPool and is replaced, no zombies, shutdown.
#include <weft/weft.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace {
std::string square(std::string_view in) {
    long v = std::stol(std::string(in));
    return std::to_string(v * v);
}
std::string whoami(std::string_view) { return std::to_string(::getpid()); }
std::string fail(std::string_view) { throw std::runtime_error("cannot do that"); }
std::string crash(std::string_view) {
    ::raise(SIGKILL);
    return {};
}

bool no_children_left() {
    errno = 0;
    return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
}

struct Register {
    Register() {
        weft::register_process_function("square", square);
        weft::register_process_function("whoami", whoami);
        weft::register_process_function("fail", fail);
        weft::register_process_function("crash", crash);
    }
} registered;
}  // namespace

TEST(ProcessPool, ResultsComeBackFromOtherProcesses) {
    weft::run([] {
        weft::ProcessPool pool(2);
        EXPECT_EQ(pool.size(), 2u);
        std::vector<weft::Future<std::string>> results;
        for (int i = 0; i < 20; ++i) results.push_back(pool.submit("square", std::to_string(i)));
        for (int i = 0; i < 20; ++i) EXPECT_EQ(results[size_t(i)].get(), std::to_string(i * i));
        auto pid = std::stoi(pool.submit("whoami", "").get());
        EXPECT_NE(pid, ::getpid());
    });
    EXPECT_TRUE(no_children_left());
}

TEST(ProcessPool, JobErrorsAndUnknownFunctions) {
    weft::run([] {
        weft::ProcessPool pool(1);
        EXPECT_THROW(pool.submit("fail", "").get(), weft::ProcessJobError);
        try {
            pool.submit("no-such-function", "").get();
            FAIL();
        } catch (const weft::ProcessJobError& e) {
            EXPECT_NE(std::string(e.what()).find("no-such-function"), std::string::npos);
        }
        EXPECT_EQ(pool.submit("square", "7").get(), "49");  // the worker is still fine
    });
}

TEST(ProcessPool, CrashingWorkerIsReportedAndReplaced) {
    weft::run([] {
        weft::ProcessPool pool(1);
        pid_t before = pool.pids()[0];
        try {
            pool.submit("crash", "").get();
            FAIL() << "a crashed job returned";
        } catch (const weft::BrokenProcessPool& e) {
            EXPECT_NE(std::string(e.what()).find("signal 9"), std::string::npos) << e.what();
        }
        EXPECT_NE(pool.pids()[0], before);  // replaced
        EXPECT_EQ(pool.submit("square", "3").get(), "9");
    });
    EXPECT_TRUE(no_children_left());  // the dead worker was reaped too
}

TEST(ProcessPool, ShutdownWithoutWaitCancelsQueuedJobs) {
    weft::run([] {
        weft::ProcessPool pool(1);
        auto a = pool.submit("square", "2");
        auto b = pool.submit("square", "3");
        pool.shutdown(false);
        EXPECT_TRUE(b.cancelled());
        EXPECT_TRUE(a.done());
        EXPECT_THROW(pool.submit("square", "1"), weft::InvalidStateError);
    });
    EXPECT_TRUE(no_children_left());
}

namespace {
// Plain functions, as Python's pool.submit(cpu_bound, n): called in a worker by address.
uint64_t cpu_bound(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; ++i) sum += i * i;
    return sum;
}
double scale(double x, int times) { return x * times; }
std::string repeat(const std::string& word, std::string_view separator, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) out += (i ? std::string(separator) : "") + word;
    return out;
}
struct Point {
    int x;
    double y;
};
Point mirror(Point p) { return {-p.x, -p.y}; }
pid_t worker_pid() { return ::getpid(); }
int bump_global() {
    static int calls = 0;
    return ++calls;
}

struct CustomFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};
int throws_invalid_argument(int n) { throw std::invalid_argument("bad n " + std::to_string(n)); }
int throws_out_of_range() { throw std::out_of_range("past the end"); }
int throws_invalid_state() { throw weft::InvalidStateError("not now"); }
int throws_system_error() { throw weft::SystemError(ENOENT, "open(/nowhere)"); }
int throws_custom() { throw CustomFailure("custom what"); }
int throws_int() { throw 42; }
int sigint_is_default() {
    struct sigaction sa {};
    ::sigaction(SIGINT, nullptr, &sa);
    return sa.sa_handler == SIG_DFL;
}
}  // namespace

TEST(ProcessPool, PlainFunctionsWithTheirArgumentsAndResults) {
    weft::run([] {
        weft::ProcessPool pool(2);
        EXPECT_EQ(weft::run_in_executor(pool, cpu_bound, 1'000).get(), cpu_bound(1'000));
        EXPECT_EQ(weft::run_in_executor(&pool, &cpu_bound, 10).get(), 285u);  // int → uint64_t
        EXPECT_DOUBLE_EQ(pool.submit(scale, 1.25, 4).get(), 5.0);
        EXPECT_EQ(pool.submit(repeat, "ab", std::string(", "), 3).get(), "ab, ab, ab");
        EXPECT_EQ(pool.submit(repeat, std::string(1000, 'x'), "", 2).get(), std::string(2000, 'x'));
        Point p = pool.submit(mirror, Point{3, 1.5}).get();
        EXPECT_EQ(p.x, -3);
        EXPECT_EQ(p.y, -1.5);
        EXPECT_NE(pool.submit(worker_pid).get(), ::getpid());
        // Many at once, gathered.
        std::vector<weft::Future<uint64_t>> jobs;
        for (uint64_t n = 0; n < 20; ++n) jobs.push_back(pool.submit(cpu_bound, n));
        auto sums = weft::gather(jobs);
        for (uint64_t n = 0; n < 20; ++n) EXPECT_EQ(sums[n], cpu_bound(n));
        // The workers' memory is their own.
        pool.submit(bump_global).get();
        EXPECT_EQ(bump_global(), 1);
        // The registered-name form still works beside it.
        EXPECT_EQ(pool.submit("square", "12").get(), "144");
    });
    EXPECT_TRUE(no_children_left());
}

TEST(ProcessPool, PlainFunctionExceptionsComeBackAsTheirType) {
    weft::run([] {
        weft::ProcessPool pool(1);
        try {
            pool.submit(throws_invalid_argument, 3).get();
            FAIL() << "no exception";
        } catch (const std::invalid_argument& e) {
            EXPECT_STREQ(e.what(), "bad n 3");
        }
        EXPECT_THROW(pool.submit(throws_out_of_range).get(), std::out_of_range);
        try {
            pool.submit(throws_invalid_state).get();
            FAIL() << "no exception";
        } catch (const weft::InvalidStateError& e) {
            EXPECT_EQ(std::string(e.what()), weft::InvalidStateError("not now").what());
        }
        try {
            pool.submit(throws_system_error).get();
            FAIL() << "no exception";
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), ENOENT);
            EXPECT_EQ(std::string(e.what()), weft::SystemError(ENOENT, "open(/nowhere)").what());
        }
        // A type weft cannot rebuild: a weft::Error naming it.
        try {
            pool.submit(throws_custom).get();
            FAIL() << "no exception";
        } catch (const weft::ProcessJobError& e) {
            EXPECT_NE(e.type_name().find("CustomFailure"), std::string::npos) << e.type_name();
            EXPECT_NE(std::string(e.what()).find("CustomFailure: custom what"), std::string::npos)
                << e.what();
        }
        try {
            pool.submit(throws_int).get();
            FAIL() << "no exception";
        } catch (const weft::Error& e) {
            EXPECT_NE(std::string(e.what()).find("int"), std::string::npos) << e.what();
        }
        EXPECT_EQ(pool.submit(cpu_bound, 3).get(), 5u);  // the worker is still fine
    });
}

// External linkage, so that dladdr finds its name (fiber_tests links with -rdynamic).
int process_pool_test_crash(int) {
    ::raise(SIGKILL);
    return 0;
}

TEST(ProcessPool, PlainFunctionCrashNamesTheFunction) {
    weft::run([] {
        weft::ProcessPool pool(1);
        try {
            pool.submit(process_pool_test_crash, 1).get();
            FAIL() << "a crashed job returned";
        } catch (const weft::BrokenProcessPool& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("signal 9"), std::string::npos) << what;
            EXPECT_NE(what.find("process_pool_test_crash(int)"), std::string::npos) << what;
        }
        try {  // one without a symbol: its address
            pool.submit(+[](int) -> int { ::raise(SIGKILL); return 0; }, 1).get();
            FAIL() << "a crashed job returned";
        } catch (const weft::BrokenProcessPool& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("the function at 0x"), std::string::npos) << what;
        }
        EXPECT_EQ(pool.submit(cpu_bound, 2).get(), 1u);
    });
    EXPECT_TRUE(no_children_left());
}

// run() routes SIGINT to its loop on the main thread; the pool's workers, forked meanwhile,
// must not inherit that (a Ctrl-C ends them, as ProcessPoolExecutor's workers).
TEST(ProcessPool, WorkersHaveTheDefaultSigint) {
    weft::run([] {
        weft::ProcessPool pool(1);
        EXPECT_EQ(pool.submit(sigint_is_default).get(), 1);
    });
}

// Stuck or cancelled work (issue 20, item 3): a job whose future is abandoned — timed out
// by wait_for, or its awaiter cancelled — must not keep its worker, or the pool, busy.
namespace {
int never_returns() {
    for (;;) ::pause();  // asleep, not burning a core: still a job that never ends
}
}  // namespace

TEST(ProcessPool, TimedOutJobsWorkerIsReplacedAndThePoolGoesOn) {
    weft::run([] {
        weft::ProcessPool pool(1);
        pid_t before = pool.pids()[0];
        EXPECT_THROW(weft::wait_for(pool.submit(never_returns), std::chrono::milliseconds(20)),
                     weft::TimeoutError);
        // Before the fix the worker stayed on the abandoned job: this timed out too.
        EXPECT_EQ(weft::wait_for(pool.submit(cpu_bound, 3), std::chrono::seconds(5)), 5u);
        EXPECT_NE(pool.pids()[0], before);  // killed and replaced
        EXPECT_EQ(::kill(before, 0), -1);   // and reaped: no such process any more
    });
    EXPECT_TRUE(no_children_left());
}

TEST(ProcessPool, CancelledAwaiterFreesItsWorker) {
    weft::run([] {
        weft::ProcessPool pool(1);
        auto spinning = weft::spawn([&] { return pool.submit(never_returns).get(); });
        weft::sleep(std::chrono::milliseconds(20));
        spinning.cancel();
        EXPECT_THROW(weft::await(spinning), weft::Cancelled);
        EXPECT_EQ(weft::wait_for(pool.submit("square", "5"), std::chrono::seconds(5)), "25");
    });
    EXPECT_TRUE(no_children_left());
}

int slow_square(int n) {
    ::usleep(100'000);
    return n * n;
}

// shutdown(true) waits for the submitters' jobs: a cancelled shutdown caller must not
// cancel them (the job's own awaiter, not cancelled, then got Cancelled).
TEST(ProcessPool, CancelledShutdownDoesNotCancelOthersJobs) {
    weft::run([] {
        weft::ProcessPool pool(1);
        auto job = pool.submit(slow_square, 7);
        auto closer = weft::spawn([&] { pool.shutdown(true); });
        weft::sleep(std::chrono::milliseconds(10));
        closer.cancel();
        EXPECT_THROW(weft::await(closer), weft::Cancelled);
        EXPECT_EQ(job.get(), 49);  // not Cancelled: nobody cancelled this job's awaiter
        EXPECT_THROW(weft::wait_for(pool.submit(never_returns), std::chrono::milliseconds(20)),
                     weft::TimeoutError);
        auto start = std::chrono::steady_clock::now();
        pool.shutdown(true);  // the abandoned job is not waited for
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    });
    EXPECT_TRUE(no_children_left());
}
