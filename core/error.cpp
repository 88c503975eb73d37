// The "weft" error category and the errno helper.
#include <weft/error.hpp>

#include <cerrno>

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

void throw_errno(const std::string& context) { throw SystemError(errno, context); }

}  // namespace weft
