// weft::run and closing a loop with live fibers.
#include <weft/weft.hpp>

#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Run, ReturnsTheMainResult) {
    EXPECT_EQ(weft::run([] { return std::string("hi"); }), "hi");
    weft::run([] {});  // void
}

TEST(Run, RemainingTasksAreCancelledAndJoined) {
    std::vector<std::string> log;
    weft::run([&] {
        weft::spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                log.push_back("cancelled at exit");
                throw;
            }
        });
        weft::sleep(1ms);
    });
    EXPECT_EQ(log, std::vector<std::string>{"cancelled at exit"});
}

TEST(Run, TaskIgnoringCancellationIsReported) {
    testing::internal::CaptureStderr();
    weft::run([&] {
        weft::spawn(weft::TaskOptions{"stubborn"}, [&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
            }
        });
        weft::sleep(1ms);
    });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("ignored cancellation"), std::string::npos) << err;
    EXPECT_NE(err.find("stubborn"), std::string::npos) << err;
}

TEST(Run, NoLoopIsLeftRunning) {
    weft::run([] {});
    EXPECT_EQ(weft::Loop::running(), nullptr);
}

TEST(Close, PendingFibersAreUnwound) {
    std::vector<std::string> log;
    std::vector<std::string> messages;
    {
        weft::Loop loop;
        loop.set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { messages.push_back(c.message); });
        weft::create_task(loop, [&] {
            struct Guard {
                std::vector<std::string>& log;
                ~Guard() { log.push_back("destructor ran"); }
            } guard{log};
            weft::sleep(1h);
        });
        loop.run_once(false);
        loop.close();
    }
    EXPECT_EQ(log, std::vector<std::string>{"destructor ran"});
    ASSERT_FALSE(messages.empty());
    EXPECT_NE(messages[0].find("destroyed but it is pending"), std::string::npos);
}

TEST(Close, NeverStartedTasksEndWithoutRunning) {
    bool ran = false;
    std::vector<std::string> messages;
    {
        weft::Loop loop;
        loop.set_exception_handler(
            [&](weft::Loop&, const weft::ExceptionContext& c) { messages.push_back(c.message); });
        weft::create_task(loop, [&] { ran = true; }, "never-started");
    }  // closed with the task still queued for its first run
    EXPECT_FALSE(ran);
    ASSERT_FALSE(messages.empty());
    EXPECT_NE(messages[0].find("never-started"), std::string::npos);
}

TEST(Run, ShutdownWaitsForCleanupThatSleepsButNoLonger) {
    std::vector<std::string> log;
    auto start = weft::Clock::now();
    weft::run([&] {
        weft::spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                weft::sleep(20ms);  // clean-up that needs the loop to keep running
                log.push_back("cleaned up");
                throw;
            }
        });
        weft::sleep(1ms);
    });
    EXPECT_EQ(log, std::vector<std::string>{"cleaned up"});
    // It returns once the clean-up is done, not at the end of the shutdown grace period.
    EXPECT_LT(weft::Clock::now() - start, 5s);
}
