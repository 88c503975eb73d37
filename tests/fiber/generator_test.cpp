// Generator<T>: the seed's AsyncCounter, range-for, errors, and abandonment clean-up.
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Generator, AsyncCounterInARangeFor) {
    std::vector<int> got = weft::run([] {
        weft::Generator<int> counter([](auto& yield) {
            for (int i = 0; i < 5; ++i) {
                weft::sleep(1ms);  // the body may suspend between values
                yield(i);
            }
        });
        std::vector<int> out;
        for (int v : counter) out.push_back(v);
        return out;
    });
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Generator, NextAndEnd) {
    weft::run([] {
        weft::Generator<std::string> g([](auto& yield) { yield("only"); });
        EXPECT_EQ(g.next(), "only");
        EXPECT_EQ(g.next(), std::nullopt);
        EXPECT_EQ(g.next(), std::nullopt);
    });
}

TEST(Generator, BodyExceptionReachesTheConsumer) {
    weft::run([] {
        weft::Generator<int> g([](auto& yield) {
            yield(1);
            throw std::runtime_error("gen failed");
        });
        EXPECT_EQ(g.next(), 1);
        EXPECT_THROW(g.next(), std::runtime_error);
    });
}

TEST(Generator, AbandonedMidwayCleansUpItsFiber) {
    std::vector<std::string> log;
    weft::run([&] {
        {
            weft::Generator<int> g([&](auto& yield) {
                struct Cleanup {
                    std::vector<std::string>& log;
                    ~Cleanup() { log.push_back("body cleaned up"); }
                } cleanup{log};
                for (int i = 0;; ++i) yield(i);
            });
            EXPECT_EQ(g.next(), 0);
            EXPECT_EQ(g.next(), 1);
        }  // abandoned here
        weft::sleep(1ms);
        EXPECT_EQ(log, std::vector<std::string>{"body cleaned up"});
        EXPECT_EQ(weft::all_tasks().size(), 1u);  // only main: the producer fiber is gone
    });
}

TEST(Generator, TwoGeneratorsInterleave) {
    weft::run([] {
        auto numbers = [](int base) {
            return [base](auto& yield) {
                for (int i = 0; i < 3; ++i) yield(base + i);
            };
        };
        weft::Generator<int> a(numbers(0)), b(numbers(10));
        std::vector<int> out;
        for (int i = 0; i < 3; ++i) {
            out.push_back(*a.next());
            out.push_back(*b.next());
        }
        EXPECT_EQ(out, (std::vector<int>{0, 10, 1, 11, 2, 12}));
    });
}

TEST(Generator, NothingIsLeakedWhenItFinishes) {
    auto alive = std::make_shared<int>(0);
    std::weak_ptr<int> watch = alive;
    weft::run([&] {
        {
            weft::Generator<int> g([token = std::move(alive)](auto& yield) { yield(*token); });
            for (int v : g) EXPECT_EQ(v, 0);
        }
        weft::sleep(1ms);
    });
    EXPECT_TRUE(watch.expired());  // the body (and what it captured) was destroyed
}

TEST(Generator, ValueYieldedToACancelledNextIsNotLost) {
    weft::run([] {
        weft::Event produce;
        weft::Generator<int> g([&](auto& yield) {
            produce.wait();
            yield(1);
            yield(2);
        });
        auto first = weft::spawn([&] { return g.next(); });
        weft::sleep(0ms);
        first.cancel();  // gives up while the body has not produced yet
        EXPECT_THROW(first.get(), weft::Cancelled);
        produce.set();
        weft::sleep(1ms);  // the body yields 1 with nobody waiting
        EXPECT_EQ(g.next(), 1);
        EXPECT_EQ(g.next(), 2);
        EXPECT_EQ(g.next(), std::nullopt);
    });
}

// asyncio's aclose(): the body's clean-up has run (even one that suspends) before aclose
// returns, the generator is exhausted afterwards, and a second aclose does nothing.
TEST(Generator, AcloseWaitsForTheBodysCleanup) {
    weft::run([] {
        std::vector<std::string> log;
        weft::Generator<int> g([&](auto& yield) {
            try {
                yield(1);
                yield(2);
            } catch (const weft::Cancelled&) {
                weft::DeferCancellation defer;
                weft::sleep(5ms);
                log.push_back("clean-up");
                throw;
            }
        });
        EXPECT_EQ(g.next(), 1);
        g.aclose();
        log.push_back("after aclose");
        EXPECT_EQ(log, (std::vector<std::string>{"clean-up", "after aclose"}));
        EXPECT_EQ(g.next(), std::nullopt);
        g.aclose();

        weft::Generator<int> never_started([](auto& yield) { yield(1); });
        never_started.aclose();
        EXPECT_EQ(never_started.next(), std::nullopt);

        weft::Generator<int> failing([](auto& yield) {
            try {
                yield(1);
            } catch (const weft::Cancelled&) {
                throw std::runtime_error("clean-up failed");
            }
        });
        EXPECT_EQ(failing.next(), 1);
        EXPECT_THROW(failing.aclose(), std::runtime_error);
    });
}
