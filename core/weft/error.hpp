// weft's exception hierarchy. Every error weft throws derives from weft::Error, which is a
// std::system_error: OS failures carry errno in code() and say what was being done in what().
#pragma once

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

const std::error_category& weft_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), weft_category()};
}

class Error : public std::system_error {
public:
    using std::system_error::system_error;
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
        : Error(make_error_code(errc::invalid_state), what) {}
};

// asyncio.CancelledError: thrown at a fiber's suspension point after Task::cancel(), and by
// result() of a cancelled future. Catch it only to clean up, then let it go on.
class Cancelled : public Error {
public:
    explicit Cancelled(const std::string& message = "")
        : Error(make_error_code(errc::cancelled), message), message_(message) {}
    const std::string& message() const noexcept { return message_; }

private:
    std::string message_;
};

// asyncio.TimeoutError: a deadline passed (wait_for, timeout scopes, ThreadFuture::result).
class TimeoutError : public Error {
public:
    explicit TimeoutError(const std::string& what) : Error(make_error_code(errc::timeout), what) {}
};

// Throws SystemError(errno, context). For use right after a failed OS call.
[[noreturn]] void throw_errno(const std::string& context);

}  // namespace weft

template <>
struct std::is_error_code_enum<weft::errc> : std::true_type {};
