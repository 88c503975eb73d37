// The pools a loop keeps for blocking work: the default executor (run_in_executor with no
// pool, to_thread), which set_default_executor may replace, and the resolver's own pool.
#include <weft/executor.hpp>

#include "fiber/detail/runtime.hpp"

namespace weft {

namespace {
// getaddrinfo may block for seconds (a slow or dead DNS server), so it gets threads no
// other job competes for; four, as libuv's whole pool: enough for a few lookups at once.
constexpr size_t kResolverWorkers = 4;
}  // namespace

ThreadPool& detail::default_executor(Loop& loop) {
    detail::FiberRuntime& rt = detail::FiberRuntime::of(loop);
    if (!rt.default_executor) rt.default_executor = std::make_unique<ThreadPool>();
    return *rt.default_executor;
}

ThreadPool& detail::resolver_executor(Loop& loop) {
    detail::FiberRuntime& rt = detail::FiberRuntime::of(loop);
    if (!rt.resolver_executor)
        rt.resolver_executor = std::make_unique<ThreadPool>(kResolverWorkers);
    return *rt.resolver_executor;
}

void set_default_executor(Loop& loop, std::unique_ptr<ThreadPool> pool) {
    if (!pool) throw InvalidStateError("set_default_executor: null pool");
    if (loop.is_closed()) throw InvalidStateError("set_default_executor: event loop is closed");
    detail::FiberRuntime& rt = detail::FiberRuntime::of(loop);
    if (rt.default_executor) {
        // Jobs already queued on it still run (their awaiters get their results).
        rt.default_executor->shutdown(false, false);
        rt.replaced_executors.push_back(std::move(rt.default_executor));
    }
    rt.default_executor = std::move(pool);
}

}  // namespace weft
