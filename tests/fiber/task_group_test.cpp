// TaskGroup: joins children, first failure cancels siblings, every failure surfaces,
// nesting, and a group left by an exception cleans up its children.
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(TaskGroup, JoinsAllChildren) {
    weft::run([] {
        weft::TaskGroup tg;
        auto a = tg.spawn([] {
            weft::sleep(2ms);
            return 1;
        });
        auto b = tg.spawn([](int x) { return x * 2; }, 21);
        tg.join();
        EXPECT_EQ(a.result(), 1);
        EXPECT_EQ(b.result(), 42);
        EXPECT_EQ(tg.size(), 2u);
        EXPECT_THROW(tg.spawn([] {}), weft::InvalidStateError);
    });
}

TEST(TaskGroup, FirstFailureCancelsSiblingsAndAllErrorsSurface) {
    weft::run([] {
        std::vector<std::string> log;
        weft::TaskGroup tg;
        auto sibling = tg.spawn([&] {
            try {
                weft::sleep(1h);
            } catch (const weft::Cancelled&) {
                log.push_back("sibling cancelled");
                throw;
            }
        });
        // Both fail in their first slice, in one ready step: the sibling-cancelling done
        // callback only runs on the next turn, so both failures are real and reported.
        tg.spawn([]() { throw std::runtime_error("first"); });
        tg.spawn([]() { throw std::logic_error("second"); });
        try {
            tg.join();
            FAIL() << "join did not throw";
        } catch (const weft::TaskGroupError& e) {
            EXPECT_EQ(e.errors().size(), 2u);
            EXPECT_NE(std::string(e.what()).find("first"), std::string::npos);
            EXPECT_NE(std::string(e.what()).find("second"), std::string::npos);
        }
        EXPECT_TRUE(sibling.cancelled());
        EXPECT_EQ(log, std::vector<std::string>{"sibling cancelled"});
    });
}

TEST(TaskGroup, NestedGroupsPropagate) {
    weft::run([] {
        weft::TaskGroup outer;
        auto other = outer.spawn([] { weft::sleep(1h); });
        outer.spawn([] {
            weft::TaskGroup inner;
            inner.spawn([] { throw std::runtime_error("deep"); });
            inner.spawn([] { weft::sleep(1h); });
            inner.join();
        });
        try {
            outer.join();
            FAIL();
        } catch (const weft::TaskGroupError& e) {
            ASSERT_EQ(e.errors().size(), 1u);
            EXPECT_THROW(std::rethrow_exception(e.errors()[0]), weft::TaskGroupError);
        }
        EXPECT_TRUE(other.cancelled());
    });
}

TEST(TaskGroup, LeavingByExceptionCancelsAndWaitsForChildren) {
    std::vector<std::string> log;
    weft::run([&] {
        try {
            weft::TaskGroup tg;
            tg.spawn([&] {
                try {
                    weft::sleep(1h);
                } catch (const weft::Cancelled&) {
                    weft::sleep(1ms);  // clean-up that suspends still completes
                    log.push_back("child cleaned up");
                    throw;
                }
            });
            weft::sleep(1ms);
            throw std::runtime_error("parent body failed");
        } catch (const std::runtime_error&) {
            log.push_back("parent caught");
        }
    });
    EXPECT_EQ(log, (std::vector<std::string>{"child cleaned up", "parent caught"}));
}

TEST(TaskGroup, CancellingTheParentCancelsChildren) {
    weft::run([] {
        weft::Task<void> child;
        auto parent = weft::spawn([&] {
            weft::TaskGroup tg;
            child = tg.spawn([] { weft::sleep(1h); });
            tg.join();
        });
        weft::sleep(1ms);
        parent.cancel();
        EXPECT_THROW(parent.get(), weft::Cancelled);
        EXPECT_TRUE(child.cancelled());
    });
}
