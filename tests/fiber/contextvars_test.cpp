// ContextVar, Token and Context: get/set/reset and their misuse, defaults, a task's copy
// of its creator's Context taken at creation, fibers on one thread each seeing their own
// values, Context::run, and the per-thread Context off fibers.
#include <weft/weft.hpp>

#include <string>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace {
weft::ContextVar<int> g_number("number");
weft::ContextVar<std::string> g_request("request", "no request");

bool is_value_error(const weft::Error& e) {
    return e.code() == std::make_error_code(std::errc::invalid_argument);
}
}  // namespace

TEST(ContextVar, GetSetResetAndTheTokensOldValue) {
    weft::run([] {
        EXPECT_THROW(g_number.get(), weft::LookupError);
        EXPECT_EQ(g_number.get(7), 7);  // var.get(default)
        auto first = g_number.set(1);
        EXPECT_FALSE(first.old_value());  // Token.MISSING
        EXPECT_EQ(g_number.get(), 1);
        EXPECT_EQ(g_number.get(7), 1);
        auto second = g_number.set(2);
        EXPECT_EQ(second.old_value(), 1);
        EXPECT_EQ(g_number.get(), 2);
        g_number.reset(second);
        EXPECT_TRUE(second.used());
        EXPECT_EQ(g_number.get(), 1);
        g_number.reset(first);
        EXPECT_THROW(g_number.get(), weft::LookupError);  // back to no value at all
        // Out of order, as Python allows: each reset restores its own token's old value,
        // also after the Context was left with no value at all.
        auto a = g_number.set(1);
        auto b = g_number.set(2);
        g_number.reset(a);
        EXPECT_THROW(g_number.get(), weft::LookupError);
        g_number.reset(b);
        EXPECT_EQ(g_number.get(), 1);
    });
}

TEST(ContextVar, DefaultValueAndAFallbackThatOverridesIt) {
    weft::run([] {
        EXPECT_EQ(g_request.name(), "request");
        EXPECT_EQ(g_request.get(), "no request");
        EXPECT_EQ(g_request.get("fallback"), "fallback");  // as Python: the argument wins
        auto token = g_request.set("GET /");
        EXPECT_EQ(g_request.get(), "GET /");
        EXPECT_EQ(token.old_value(), std::nullopt);
        g_request.reset(token);
        EXPECT_EQ(g_request.get(), "no request");
    });
}

TEST(ContextVar, TokenMisuse) {
    weft::run([] {
        weft::ContextVar<int> other("other");
        auto token = g_number.set(1);
        auto others = other.set(2);
        // Made by another variable: ValueError in Python.
        try {
            g_number.reset(others);
            FAIL() << "reset with another variable's token";
        } catch (const weft::Error& e) {
            EXPECT_TRUE(is_value_error(e)) << e.what();
        }
        // Made in another Context (the parent's, reset in a child task): ValueError.
        weft::spawn([&] {
            try {
                g_number.reset(token);
                ADD_FAILURE() << "reset in another Context";
            } catch (const weft::Error& e) {
                EXPECT_TRUE(is_value_error(e)) << e.what();
            }
        }).get();
        g_number.reset(token);
        // Used twice: RuntimeError in Python.
        EXPECT_THROW(g_number.reset(token), weft::InvalidStateError);
        other.reset(others);
    });
}

TEST(ContextVar, ATaskStartsWithACopyOfItsCreatorsContext) {
    weft::run([] {
        auto token = g_number.set(1);
        weft::Event child_set, parent_set;
        auto child = weft::spawn([&] {
            int at_start = g_number.get();
            g_number.set(10);  // invisible to the parent
            child_set.set();
            parent_set.wait();
            return at_start * 1000 + g_number.get();  // the parent's later set is invisible
        });
        g_number.set(2);  // after creation, before the child first runs: not copied
        child_set.wait();
        EXPECT_EQ(g_number.get(), 2);
        g_number.set(3);
        parent_set.set();
        EXPECT_EQ(child.get(), 1 * 1000 + 10);
        EXPECT_EQ(g_number.get(), 3);
        g_number.reset(token);
    });
}

TEST(ContextVar, TwoFibersOnOneThreadSeeTheirOwnValues) {
    // A thread_local here would be one value for both: each would read the other's.
    weft::run([] {
        auto serve = [](std::string request) {
            g_request.set(request);
            std::string seen;
            for (int i = 0; i < 5; ++i) {
                weft::sleep(0ms);  // the other fiber runs and sets its own value
                seen += g_request.get() == request ? "." : "x";
            }
            return seen;
        };
        auto a = weft::spawn(serve, "a");
        auto b = weft::spawn(serve, "b");
        EXPECT_EQ(a.get(), ".....");
        EXPECT_EQ(b.get(), ".....");
        EXPECT_EQ(g_request.get(), "no request");  // the creator saw none of it
    });
}

TEST(ContextVar, ManyVariablesInOneContext) {
    weft::run([] {
        weft::ContextVar<int> a("a"), b("b"), c("c");
        c.set(3);
        a.set(1);
        b.set(2);
        auto snapshot = weft::copy_context();
        EXPECT_EQ(snapshot.size(), 3u);
        auto tb = b.set(20);
        EXPECT_EQ(a.get() + b.get() + c.get(), 24);
        EXPECT_EQ(snapshot.get(b), 2);  // the copy did not change
        b.reset(tb);
        EXPECT_EQ(b.get(), 2);
    });
}

TEST(Context, RunKeepsWhatItSetAndPutsTheOuterContextBack) {
    weft::run([] {
        auto token = g_number.set(1);
        weft::Context ctx = weft::copy_context();
        EXPECT_EQ(ctx.get(g_number), 1);
        int inside = ctx.run([] {
            g_number.set(2);
            weft::sleep(0ms);  // suspending inside run keeps it in force for this fiber
            return g_number.get();
        });
        EXPECT_EQ(inside, 2);
        EXPECT_EQ(g_number.get(), 1);     // the outer Context is back
        EXPECT_EQ(ctx.get(g_number), 2);  // the set stayed in ctx
        EXPECT_EQ(ctx.run([] { return g_number.get(); }), 2);
        EXPECT_THROW(ctx.run([&] { ctx.run([] {}); }), weft::InvalidStateError);  // entered twice
        // A token made inside run resets inside another run of the same Context only.
        auto inner = ctx.run([] { return g_number.set(3); });
        EXPECT_THROW(g_number.reset(inner), weft::Error);
        ctx.run([&] { g_number.reset(inner); });
        EXPECT_EQ(ctx.get(g_number), 2);
        EXPECT_FALSE(weft::Context().get(g_number));  // contextvars.Context(): empty
        g_number.reset(token);
    });
}

TEST(ContextVar, OffFibersEachThreadHasItsOwnContext) {
    // weft::run's main task copies the calling thread's Context when it is created.
    auto token = g_number.set(5);
    int in_main = weft::run([] {
        int seen = g_number.get();
        g_number.set(6);  // the task's own Context: the thread's stays as it was
        return seen;
    });
    EXPECT_EQ(in_main, 5);
    EXPECT_EQ(g_number.get(), 5);
    int on_other_thread = -1;
    std::thread([&] {
        on_other_thread = g_number.get(-1);
        g_number.set(7);  // released when this thread ends
    }).join();
    EXPECT_EQ(on_other_thread, -1);
    EXPECT_EQ(g_number.get(), 5);
    g_number.reset(token);
    EXPECT_THROW(g_number.get(), weft::LookupError);
}
