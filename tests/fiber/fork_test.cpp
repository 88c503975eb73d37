// fork() with a loop: the child gets a usable fresh loop (even from inside a task of the
// inherited one), a clear error when it runs the inherited loop, and closing that copy in
// the child leaves the parent's registrations intact.
#include <weft/weft.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <utility>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
// Waits for a child without blocking the loop; bounded.
int wait_child(pid_t pid) {
    int status = 0;
    for (int i = 0; i < 10000; ++i) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0) return -1;
        weft::sleep(1ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
}

bool exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
}  // namespace

TEST(Fork, ChildRunsAFreshLoopFromInsideATaskAndParentStaysIntact) {
    weft::run([] {
        weft::Loop& parent_loop = weft::Loop::current();
        auto [a, b] = weft::stream_pair();
        std::optional<std::pair<weft::Stream, weft::Stream>> dropped_in_child(weft::stream_pair());
        auto ticker = weft::spawn([] {
            for (int i = 0; i < 3; ++i) weft::sleep(1ms);
            return 3;
        });
        pid_t pid = ::fork();
        if (pid == 0) {
            int code = 10;
            try {
                // Dropping inherited streams in the child must leave the parent's
                // registrations alone (the epoll instance is shared).
                dropped_in_child.reset();
                // A new loop works in the child, here on the stack of the parent's task.
                int v = weft::run([] {
                    weft::sleep(1ms);
                    return weft::spawn([] { return 7; }).get();
                });
                code = v == 7 ? 0 : 11;
                // Closing the inherited copy must not touch the poller shared with the parent.
                parent_loop.close();
            } catch (...) {
                code = 12;
            }
            ::_exit(code);
        }
        ASSERT_GT(pid, 0);
        EXPECT_TRUE(exited_with(wait_child(pid), 0));
        // The parent's loop and its registrations still work after the child is gone.
        EXPECT_EQ(ticker.get(), 3);
        a.write("ping");
        // The bounds only turn a hang into a failure: generous, for a stalled CI machine.
        EXPECT_EQ(weft::wait_for(weft::spawn([&] { return b.read_exactly(4); }), 10s), "ping");
        auto reader = weft::spawn([&] { return dropped_in_child->first.read_exactly(4); });
        weft::sleep(1ms);  // the reader now waits for readiness, which only the poller reports
        dropped_in_child->second.write("pong");
        EXPECT_EQ(weft::wait_for(std::move(reader), 10s), "pong");
    });
}

TEST(Fork, RunningTheInheritedLoopInTheChildIsAClearError) {
    weft::Loop loop;
    bool ran = false;
    loop.call_soon([&] { ran = true; });
    pid_t pid = ::fork();
    if (pid == 0) {
        int code = 20;
        try {
            loop.run_once(false);
        } catch (const weft::InvalidStateError& e) {
            code = std::strstr(e.what(), "fork()") ? 0 : 21;
        } catch (...) {
            code = 22;
        }
        loop.close();  // releases nothing of the parent's; must not crash
        ::_exit(code);
    }
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(exited_with(status, 0)) << status;
    loop.run_once(false);
    EXPECT_TRUE(ran);
}
