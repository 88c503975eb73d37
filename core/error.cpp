// The "weft" error category and the errno helper.
#include <weft/error.hpp>

#include <cerrno>
#include <utility>

namespace weft {

namespace {
class WeftCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "weft"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::invalid_state: return "invalid state";
            case errc::cancelled: return "cancelled";
            case errc::timeout: return "timed out";
            case errc::lookup_failed: return "lookup failed";
        }
        return "unknown weft error";
    }
};
}  // namespace

const std::error_category& weft_category() noexcept {
    static const WeftCategory category;
    return category;
}

Error::Error(std::errc code, const std::string& what)
    : std::system_error(std::make_error_code(code), what),
      own_(std::make_shared<const std::string>(what)) {}
Error::Error(errc code, const std::string& what)
    : std::system_error(make_error_code(code), what),
      own_(std::make_shared<const std::string>(what)) {}

const char* Error::what() const noexcept { return own_ ? own_->c_str() : std::system_error::what(); }

Cancelled::Cancelled(std::string message)
    : message_(std::move(message)),
      what_(message_.empty() ? "cancelled" : "cancelled: " + message_) {}

std::string describe_exception(const std::exception_ptr& e) {
    if (!e) return "no exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (const BaseException& x) {
        return x.what();
    } catch (...) {
        return "non-standard exception";
    }
}

void throw_errno(const std::string& context) { throw SystemError(errno, context); }

}  // namespace weft
