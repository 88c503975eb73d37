// Test sizes that depend on the build. ThreadSanitizer gives every fiber a history of its
// own (about 1 MiB of address space each, a few thousand at most), so tests that hold many
// fibers alive at once use fewer under it; everywhere else they run at full size.
#pragma once

#include <algorithm>

#include "core/detail/sanitizers.hpp"

namespace weft::testing {

inline int live_fibers(int wanted) {
#ifdef WEFT_TSAN
    return std::min(wanted, 1000);
#else
    return wanted;
#endif
}

}  // namespace weft::testing
