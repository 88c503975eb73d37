// Bridges between the loop's fibers and other threads: wrap_future (a ThreadFuture as an
// awaitable loop Future), run_in_executor (a blocking call on a worker pool, awaited by a
// fiber), to_thread (the same on the default pool, in the caller's Context, awaited at
// once), set_default_executor, and run_coroutine_threadsafe (a fiber function run as a
// task on a loop that belongs to another thread, with a ThreadFuture for its result).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include <weft/contextvars.hpp>
#include <weft/future.hpp>
#include <weft/loop_thread.hpp>
#include <weft/task.hpp>
#include <weft/thread_future.hpp>
#include <weft/thread_pool.hpp>

namespace weft {

namespace detail {
// Moves a finished ThreadFuture's outcome into a pending loop future (loop thread).
template <class T>
void settle(FutureState<T>& target, ThreadFuture<T>& source) {
    if (target.done()) return;  // cancelled meanwhile
    if (source.cancelled()) {
        target.cancel("the thread future was cancelled");
    } else if (auto error = source.exception()) {
        target.set_exception(error);
    } else if constexpr (std::is_void_v<T>) {
        target.set_result();
    } else {
        target.set_result(std::move(source.result()));
    }
}

// The pool a loop uses when run_in_executor is given none and for to_thread: the one
// set_default_executor gave it, else a ThreadPool of ThreadPool::default_workers() created
// on first use. Shut down with waiting when the loop closes. Loop thread only.
ThreadPool& default_executor(Loop& loop);
// The loop's pool for getaddrinfo (resolve), apart from the default one so that blocking
// jobs there never hold up name resolution. Created on first use; loop thread only.
ThreadPool& resolver_executor(Loop& loop);
}  // namespace detail

// loop.set_default_executor(executor): run_in_executor(nullptr, ...) and to_thread use
// `pool` from now on. The loop owns it and shuts it down (waiting for its jobs) when it
// closes. A default pool it replaces is shut down without waiting: jobs already queued
// there still run and complete their futures; its threads are joined at close. Loop
// thread only; InvalidStateError if pool is null or the loop is closed.
void set_default_executor(Loop& loop, std::unique_ptr<ThreadPool> pool);

// asyncio.wrap_future: a loop future that completes when `source` does. Cancelling the
// loop future cancels `source` (a job that has not started then never runs).
template <class T>
Future<T> wrap_future(ThreadFuture<T> source, Loop& loop = Loop::current()) {
    Future<T> target(loop);
    auto* state = static_cast<detail::FutureState<T>*>(target.base());
    state->ref();  // released on the loop thread once settled; loop-affine, never elsewhere
    LoopHandle handle = loop.handle();
    source.add_done_callback([handle, state](ThreadFuture<T>& done) mutable {
        try {
            handle.post_completion([state, done]() mutable {
                settle(*state, done);
                state->unref();
            });
        } catch (const InvalidStateError&) {
            // The loop is closed: nobody can await the target any more.
        }
    });
    target.add_done_callback([source](Future<T>& f) mutable {
        if (f.cancelled()) source.cancel();
    });
    return target;
}

// loop.run_in_executor(executor, fn, *args): runs fn(args...) on `pool` (or the loop's
// default pool if null) and returns an awaitable loop future. Cancelling the awaiting
// fiber cancels the job if it has not started yet. An exception fn throws reaches the
// awaiter as itself (same type). As in asyncio, fn runs in the worker thread's Context,
// not the caller's (to_thread carries it). A ProcessPool overload is in process_pool.hpp.
template <class F, class... Args>
auto run_in_executor(ThreadPool* pool, F&& fn, Args&&... args) {
    Loop& loop = Loop::current();
    ThreadPool& executor = pool ? *pool : detail::default_executor(loop);
    return wrap_future(executor.submit(std::forward<F>(fn), std::forward<Args>(args)...), loop);
}
// run_in_executor(nullptr, ...): the default pool (an overload, so that nullptr is not
// ambiguous between the ThreadPool* and ProcessPool* forms).
template <class F, class... Args>
auto run_in_executor(std::nullptr_t, F&& fn, Args&&... args) {
    return run_in_executor(static_cast<ThreadPool*>(nullptr), std::forward<F>(fn),
                           std::forward<Args>(args)...);
}

// asyncio.to_thread(fn, *args): runs fn(args...) on the loop's default pool with a copy of
// the caller's Context in force on the worker thread (what fn sets there stays there),
// suspends the calling fiber until it is done and returns its result or rethrows its
// exception. asyncio.to_thread is a coroutine, awaited where it is called; in weft an
// await is a plain call, so this returns the result (gather several with
// gather([&] { return to_thread(f, x); }, ...)). For a Future to hold instead, use
// run_in_executor. Cancelling the caller cancels the job if it has not started yet.
template <class F, class... Args>
auto to_thread(F&& fn, Args&&... args) {
    Loop& loop = Loop::current();
    auto call = [context = copy_context(), fn = std::forward<F>(fn),
                 ... args = std::forward<Args>(args)]() mutable {
        return context.run([&] { return std::invoke(fn, args...); });
    };
    auto future = wrap_future(detail::default_executor(loop).submit(std::move(call)), loop);
    using R = typename decltype(future)::value_type;
    if constexpr (std::is_void_v<R>)
        future.get();
    else
        return R(std::move(future.get()));
}

// asyncio.run_coroutine_threadsafe: from any thread, run fn(args...) as a task on the loop
// behind `handle`; the ThreadFuture gets its result. The task starts with a copy of the
// caller's Context. Cancelling the ThreadFuture cancels the task. Throws
// InvalidStateError if that loop is closed.
template <class F, class... Args>
auto run_coroutine_threadsafe(LoopHandle handle, F&& fn, Args&&... args) {
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable {
        return std::invoke(fn, args...);
    };
    using R = std::invoke_result_t<decltype(call)&>;
    ThreadFuture<R> result;
    handle.call_soon_threadsafe([result, handle, call = std::move(call),
                                 context = copy_context()]() mutable {
        if (result.done()) return;  // cancelled before it reached the loop
        // Created in the caller's Context, as asyncio's callback (run in the Context
        // call_soon_threadsafe copied) creates the task in it.
        auto task = context.run([&] { return spawn(std::move(call)); });
        task.add_done_callback([result](Task<R>& t) mutable {
            if (result.done()) return;
            if (t.cancelled()) {
                result.cancel();
            } else if (auto error = t.exception()) {
                result.set_exception(error);
            } else if constexpr (std::is_void_v<R>) {
                result.set_result();
            } else {
                result.set_result(std::move(t.result()));
            }
        });
        // A cancel from any thread reaches the task on its own loop. The task is held by
        // a reference taken here, on the loop thread, and dropped there.
        detail::TaskBase* raw = static_cast<detail::TaskBase*>(task.base());
        raw->ref();
        result.add_done_callback([handle, raw](ThreadFuture<R>& f) mutable {
            bool cancel = f.cancelled();
            try {
                handle.call_soon_threadsafe([raw, cancel] {
                    if (cancel) raw->cancel("run_coroutine_threadsafe: cancelled");
                    raw->unref();
                });
            } catch (const InvalidStateError&) {  // loop closed: the task is gone with it
            }
        });
    });
    return result;
}

template <class F, class... Args>
auto run_coroutine_threadsafe(LoopThread& thread, F&& fn, Args&&... args) {
    return run_coroutine_threadsafe(thread.handle(), std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace weft
