// Fibers that suspend inside catch blocks: each must keep its own "current exception"
// (the C++ runtime keeps it per thread, so weft swaps it on every fiber switch).
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(ExceptionState, InterleavedCatchBlocksRethrowTheirOwnException) {
    weft::run([] {
        auto body = [](std::string name, std::chrono::milliseconds first,
                       std::chrono::milliseconds second) {
            try {
                throw std::runtime_error(name);
            } catch (const std::runtime_error&) {
                weft::sleep(first);  // another fiber enters its own catch meanwhile
                EXPECT_EQ(std::uncaught_exceptions(), 0);
                weft::sleep(second);
                try {
                    throw;  // must rethrow *this* fiber's exception
                } catch (const std::runtime_error& again) {
                    return std::string(again.what());
                }
            }
        };
        // Both enter their catch blocks in the same turn, a first; a also leaves first, so
        // the per-thread record of caught exceptions is not used last-in-first-out.
        auto a = weft::spawn(body, "a", 1ms, 1ms);
        auto b = weft::spawn(body, "b", 5ms, 5ms);
        auto [ra, rb] = weft::gather(a, b);
        EXPECT_EQ(ra, "a");
        EXPECT_EQ(rb, "b");
    });
}

TEST(ExceptionState, CurrentExceptionAcrossSuspension) {
    weft::run([] {
        auto t = weft::spawn([] {
            try {
                throw std::logic_error("mine");
            } catch (...) {
                weft::sleep(1ms);
                auto e = std::current_exception();
                try {
                    std::rethrow_exception(e);
                } catch (const std::logic_error& x) {
                    return std::string(x.what());
                }
            }
            return std::string();
        });
        auto other = weft::spawn([] {
            try {
                throw std::runtime_error("other");
            } catch (...) {
                weft::sleep(2ms);
            }
        });
        EXPECT_EQ(t.get(), "mine");
        other.get();
    });
}
