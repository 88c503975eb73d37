// ProcessPool (concurrent.futures.ProcessPoolExecutor): CPU work in isolated worker
// processes, results back as loop futures. A job is either a plain function called with
// its arguments — pool.submit(fn, args...) or run_in_executor(&pool, fn, args...), as
// Python's pool.submit(fn, *args) — or a function registered by name that takes and
// returns a byte string. Workers are forked once, when the pool starts, and talk to the
// loop over socketpairs watched by the reactor. A worker that crashes or is killed fails
// its job with BrokenProcessPool and is replaced; a worker whose job's future is cancelled
// (its awaiter cancelled, wait_for timed out) is killed and replaced at once, as the job
// can no longer deliver anything; every worker is reaped, so no zombies are left.
//
// Plain functions: workers are forks of this program, so a function pointer means the
// same function there. Arguments and the result cross as bytes: each must be trivially
// copyable (and not a pointer, which would point into the wrong process) or a std::string
// / std::string_view (a std::string_view result is refused: it would dangle); anything
// else fails to compile. Serialise other data into a std::string. A function in a library
// loaded (dlopen) after the pool started does not exist in its workers.
//
// Fork-safety: workers are forked from the loop thread. As with Python's fork start
// method, start pools before other threads exist (or while they hold no locks), and
// register every function before starting the pool (the registry is copied by fork).
// Loop thread only.
#pragma once

#include <sys/types.h>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/error.hpp>
#include <weft/future.hpp>
#include <weft/io_watch.hpp>

namespace weft {

// A worker process died (crashed, was killed) while running the job.
class BrokenProcessPool : public Error {
public:
    explicit BrokenProcessPool(const std::string& what)
        : Error(std::errc::broken_pipe, what) {}
};

// The job's function threw in the worker: carries its what(). A plain-function job's
// exception comes back as its own type when weft can rebuild it (the std::logic_error and
// std::runtime_error families, std::bad_alloc, std::system_error, weft::Error and those
// of its subclasses made from a message, but not Cancelled); any other type comes back as
// this, its what() "<type>: <what>", type_name() the original type. A registered
// function's exception always comes back as this, "<name>: <what>".
class ProcessJobError : public Error {
public:
    explicit ProcessJobError(const std::string& what, std::string type_name = {})
        : Error(std::errc::io_error, what),
          type_name_(std::move(type_name)) {}
    const std::string& type_name() const noexcept { return type_name_; }

private:
    std::string type_name_;
};

using ProcessFunction = std::string (*)(std::string_view input);

namespace detail {

// What crosses to a worker process as bytes (see the file comment).
template <class T>
inline constexpr bool kProcessString =
    std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>;
template <class T>
inline constexpr bool kProcessBytes =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T>;
template <class P>
inline constexpr bool kProcessParameter =
    (kProcessString<std::remove_cvref_t<P>> || kProcessBytes<std::remove_cvref_t<P>>) &&
    !(std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>);
template <class R>  // not a std::string_view: it would point into the worker's memory
inline constexpr bool kProcessResult = std::is_void_v<R> || std::is_same_v<R, std::string> ||
                                       (kProcessBytes<R> && !std::is_same_v<R, std::string_view>);

// A string is its u64 length then its bytes; any other value is its object bytes (the
// workers are this same program on this same machine).
template <class T>
void process_put(std::string& out, const T& value) {
    if constexpr (kProcessString<T>) {
        uint64_t n = value.size();
        out.append(reinterpret_cast<const char*>(&n), sizeof n);
        out.append(value.data(), value.size());
    } else {
        out.append(reinterpret_cast<const char*>(std::addressof(value)), sizeof(T));
    }
}
[[noreturn]] void throw_process_truncated();
// Takes a T from the front of in; a std::string_view points into in's bytes.
template <class T>
T process_take(std::string_view& in) {
    if constexpr (kProcessString<T>) {
        uint64_t n;
        if (in.size() < sizeof n) throw_process_truncated();
        std::memcpy(&n, in.data(), sizeof n);
        in.remove_prefix(sizeof n);
        if (in.size() < n) throw_process_truncated();
        T value(in.data(), size_t(n));
        in.remove_prefix(size_t(n));
        return value;
    } else {
        if (in.size() < sizeof(T)) throw_process_truncated();
        std::array<char, sizeof(T)> bytes;
        std::memcpy(bytes.data(), in.data(), sizeof(T));
        in.remove_prefix(sizeof(T));
        return std::bit_cast<T>(bytes);
    }
}

// In the worker: decodes the arguments, calls the function, encodes its result.
using ProcessCall = std::string (*)(void (*fn)(), std::string_view input);
template <class R, class... P>
std::string process_call(void (*erased)(), std::string_view input) {
    auto fn = reinterpret_cast<R (*)(P...)>(erased);
    // Braced: the arguments are taken in order.
    std::tuple<std::remove_cvref_t<P>...> args{process_take<std::remove_cvref_t<P>>(input)...};
    (void)input;  // unused when there are no arguments
    std::string output;
    auto call = [&](auto&... a) -> R { return fn(std::move(a)...); };
    if constexpr (std::is_void_v<R>)
        std::apply(call, args);
    else
        process_put(output, std::apply(call, args));
    return output;
}

// In the loop: completes the job's future with the worker's output.
using ProcessDeliver = void (*)(FutureBase& result, std::string_view output);
template <class R>
void process_deliver(FutureBase& result, std::string_view output) {
    auto& state = static_cast<FutureState<R>&>(result);
    if constexpr (std::is_void_v<R>)
        state.set_result();
    else
        state.set_result(process_take<R>(output));
}

// A job's watch on its own future while a worker runs it (see ProcessPool::Job).
struct ProcessAbandon : Waiter {
    pid_t worker = -1;
};

}  // namespace detail

// Makes fn callable in worker processes as `name`. Call before starting a pool.
void register_process_function(const std::string& name, ProcessFunction fn);

class ProcessPool {
public:
    // Forks `workers` processes (0: one per hardware thread) on the running loop.
    explicit ProcessPool(size_t workers = 0);
    ~ProcessPool();  // shutdown(true)
    ProcessPool(const ProcessPool&) = delete;
    ProcessPool& operator=(const ProcessPool&) = delete;

    // Executor.submit(fn, *args): queues a call of the plain function fn(args...) (each
    // argument converted to its parameter's type here); the future gets its result, its
    // exception (see ProcessJobError), or BrokenProcessPool if the worker died. Cancelling
    // the future drops a job that has not been sent to a worker.
    template <class R, class... P, class... Args>
    Future<R> submit(R (*fn)(P...), Args&&... args) {
        static_assert(sizeof...(P) == sizeof...(Args),
                      "ProcessPool::submit: wrong number of arguments");
        static_assert((detail::kProcessParameter<P> && ...),
                      "ProcessPool::submit: each parameter must be trivially copyable (not a "
                      "pointer) or a std::string / std::string_view, and not a non-const "
                      "reference: serialise other data into a std::string");
        static_assert(detail::kProcessResult<R>,
                      "ProcessPool::submit: the result must be void, trivially copyable (not a "
                      "pointer nor a std::string_view) or a std::string: serialise other data "
                      "into a std::string");
        std::string input;
        // A fold over the comma: the arguments go in in order.
        (detail::process_put<std::remove_cvref_t<P>>(input, std::forward<Args>(args)), ...);
        Future<R> result(*loop_);
        enqueue(reinterpret_cast<void (*)()>(&detail::process_call<R, P...>),
                reinterpret_cast<void (*)()>(fn), std::move(input), result.base(),
                &detail::process_deliver<R>);
        return result;
    }

    // Queues a call of the registered function `name` with `input`; the future gets its
    // output, ProcessJobError if it threw (or is unknown), BrokenProcessPool if the worker
    // died. Cancelling the future drops a job that has not been sent to a worker.
    Future<std::string> submit(const std::string& name, std::string input);

    // Stops the workers. wait: queued and running jobs are still run first (awaited from
    // the loop; a job whose future is already cancelled is not waited for, its worker is
    // killed); otherwise they are cancelled. Cancelling the caller meanwhile throws
    // Cancelled in it but cancels nobody's job. Idempotent.
    void shutdown(bool wait = true);
    size_t size() const noexcept { return workers_.size(); }
    std::vector<pid_t> pids() const;

private:
    struct Job {
        bool by_name = true;  // a registered function's name, or a plain function:
        std::string name;     // the registered name
        void (*call)() = nullptr;  // detail::process_call<R, P...> (a detail::ProcessCall)
        void (*fn)() = nullptr;    // the plain function
        std::string input;
        detail::Ref<detail::FutureBase> result;
        detail::ProcessDeliver deliver = nullptr;
        // While the job is in a worker: a waiter on `result` whose notify SIGKILLs that
        // worker, so a job abandoned by its owner (cancelled, timed out) does not keep the
        // worker — and with it the pool — busy; the EOF that follows retires and replaces
        // it. Unlinked (detach) before the pool itself completes the job or reaps the worker.
        detail::ProcessAbandon abandon;
        Job() = default;
        Job(const Job&) = delete;
        Job& operator=(const Job&) = delete;
        ~Job() { detach(); }
        void detach() noexcept;
        std::string describe() const;  // for error messages: the name or the function's
    };
    struct Worker {
        pid_t pid = -1;
        int fd = -1;
        IoWatch watch;
        std::string inbox;       // response bytes read so far
        std::unique_ptr<Job> job;  // in flight, or null when idle
    };

    void enqueue(void (*call)(), void (*fn)(), std::string input, detail::FutureBase* result,
                 detail::ProcessDeliver deliver);
    void spawn_worker(Worker& w);
    void dispatch();
    void on_readable(size_t index);
    void retire(Worker& w, const std::string& why);  // reap; fail its job; replace
    void stop_worker(Worker& w) noexcept;

    Loop* loop_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::deque<std::unique_ptr<Job>> pending_;
    bool closed_ = false;
};

// loop.run_in_executor(process_pool, fn, *args): pool.submit(fn, args...). (The
// registered-name form is pool.submit(name, bytes).)
template <class R, class... P, class... Args>
Future<R> run_in_executor(ProcessPool& pool, R (*fn)(P...), Args&&... args) {
    return pool.submit(fn, std::forward<Args>(args)...);
}
template <class R, class... P, class... Args>
Future<R> run_in_executor(ProcessPool* pool, R (*fn)(P...), Args&&... args) {
    if (!pool) throw InvalidStateError("run_in_executor: null ProcessPool");
    return pool->submit(fn, std::forward<Args>(args)...);
}

}  // namespace weft
