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
