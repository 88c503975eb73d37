// weft's exception hierarchy. Every error weft throws derives from weft::Error, which is a
// std::system_error: OS failures carry errno in code() and say what was being done in what()
// ("context: strerror"); weft's own failures carry a code that classifies them and a
// what() that is their message alone (no unrelated errno text appended).
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <system_error>

namespace weft {

// Error codes for failures that do not come from the OS (category "weft").
enum class errc {
    invalid_state = 1,  // operation not allowed in the object's current state
    cancelled,          // the operation was cancelled
    timeout,            // a deadline passed
    lookup_failed,      // no value for the key (LookupError)
};

}  // namespace weft

template <>
struct std::is_error_code_enum<weft::errc> : std::true_type {};

namespace weft {

const std::error_category& weft_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), weft_category()};
}

class Error : public std::system_error {
public:
    // An OS-style error: what() is "<what>: <code's message>".
    using std::system_error::system_error;
    // weft's own error (not an OS call's): code() classifies it, what() is `what` alone.
    Error(std::errc code, const std::string& what);
    Error(errc code, const std::string& what);
    const char* what() const noexcept override;

private:
    // weft's own message, or null (shared: copying an exception must not throw).
    std::shared_ptr<const std::string> own_;
};

// An OS call failed: code() is {errno, system_category}, what() is "context: strerror".
class SystemError : public Error {
public:
    SystemError(int err, const std::string& context)
        : Error(std::error_code(err, std::system_category()), context) {}
    int errno_value() const noexcept { return code().value(); }
};

// asyncio.InvalidStateError; also used for misuse of a loop (closed, already running).
class InvalidStateError : public Error {
public:
    explicit InvalidStateError(const std::string& what)
        : Error(errc::invalid_state, what) {}
};

// asyncio's BaseException, for what weft throws only to unwind a fiber or a program:
// deliberately not a std::exception, so that `catch (const std::exception&)` — the usual
// "catch every error" line in C++ — cannot swallow a cancellation (asyncio moved
// CancelledError under BaseException in 3.8 for the same reason). `catch (...)` is
// asyncio's `except BaseException:`; catch it only to clean up, then rethrow.
class BaseException {
public:
    virtual ~BaseException() = default;
    virtual const char* what() const noexcept = 0;
};

// asyncio.CancelledError: thrown at a fiber's suspension point after Task::cancel(), and by
// result() of a cancelled future. Catch it only to clean up, then let it go on.
class Cancelled : public BaseException {
public:
    explicit Cancelled(std::string message = "");
    // The message given to cancel() (may be empty).
    const std::string& message() const noexcept { return message_; }
    // "cancelled", or "cancelled: <message>".
    const char* what() const noexcept override { return what_.c_str(); }
    std::error_code code() const noexcept { return make_error_code(errc::cancelled); }

private:
    std::string message_;
    std::string what_;
};

// KeyboardInterrupt: run() on the main thread caught a SIGINT (Ctrl-C), cancelled its main
// task and waited for it to unwind; the program should now end (exit status 130 is the
// shell's convention for "killed by SIGINT").
class KeyboardInterrupt : public BaseException {
public:
    const char* what() const noexcept override { return "KeyboardInterrupt (SIGINT)"; }
};

// What any exception is, in one line for logs: what() of a std::exception or a
// BaseException, else "non-standard exception". Null gives "no exception".
std::string describe_exception(const std::exception_ptr& e);

// asyncio.TimeoutError: a deadline passed (wait_for, timeout scopes, ThreadFuture::result).
class TimeoutError : public Error {
public:
    explicit TimeoutError(const std::string& what) : Error(errc::timeout, what) {}
};

// Throws SystemError(errno, context). For use right after a failed OS call.
[[noreturn]] void throw_errno(const std::string& context);

}  // namespace weft
