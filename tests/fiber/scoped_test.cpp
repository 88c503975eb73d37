// with_resource: tear-down that suspends runs on normal exit, on exception and on
// cancellation (the seed's `async with` DB-connection pattern, with a fake connection).
#include <weft/weft.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
struct FakeConnection {
    std::vector<std::string>* log;
    static FakeConnection open(std::vector<std::string>& log) {
        weft::sleep(1ms);  // connecting suspends
        log.push_back("open");
        return {&log};
    }
    void close() {
        log->push_back("closing");
        weft::sleep(2ms);  // closing suspends too
        log->push_back("close");
    }
};
}  // namespace

TEST(WithResource, NormalExit) {
    std::vector<std::string> log;
    int r = weft::run([&] {
        return weft::with_resource([&] { return FakeConnection::open(log); },
                                   [&](FakeConnection&) {
                                       log.push_back("use");
                                       return 42;
                                   },
                                   [](FakeConnection& c) { c.close(); });
    });
    EXPECT_EQ(r, 42);
    EXPECT_EQ(log, (std::vector<std::string>{"open", "use", "closing", "close"}));
}

TEST(WithResource, ExceptionExit) {
    std::vector<std::string> log;
    EXPECT_THROW(weft::run([&] {
                     weft::with_resource([&] { return FakeConnection::open(log); },
                                         [&](FakeConnection&) { throw std::runtime_error("query failed"); },
                                         [](FakeConnection& c) { c.close(); });
                 }),
                 std::runtime_error);
    EXPECT_EQ(log, (std::vector<std::string>{"open", "closing", "close"}));
}

TEST(WithResource, FailingCloseRunsOnceAndPropagates) {
    int closes = 0;
    EXPECT_THROW(weft::run([&] {
                     return weft::with_resource([] { return 1; }, [](int& r) { return r; },
                                                [&](int&) {
                                                    ++closes;
                                                    throw std::runtime_error("close failed");
                                                });
                 }),
                 std::runtime_error);
    EXPECT_EQ(closes, 1);
}

TEST(WithResource, CancellationExit) {
    std::vector<std::string> log;
    weft::run([&] {
        auto t = weft::spawn([&] {
            weft::with_resource([&] { return FakeConnection::open(log); },
                                [&](FakeConnection&) {
                                    log.push_back("waiting");
                                    weft::sleep(1h);
                                },
                                [](FakeConnection& c) { c.close(); });
        });
        while (log.size() < 2) weft::sleep(0ms);  // until it waits in `use`
        t.cancel();
        while (log.back() != "closing") weft::sleep(0ms);
        t.cancel();  // a second cancel during tear-down must not cut it short
        EXPECT_THROW(t.get(), weft::Cancelled);
    });
    EXPECT_EQ(log, (std::vector<std::string>{"open", "waiting", "closing", "close"}));
}
