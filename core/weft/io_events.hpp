// Readiness bits shared by IoWatch interest and the events it reports.
#pragma once

#include <cstdint>

namespace weft {

inline constexpr uint32_t kReadable = 1u << 0;
inline constexpr uint32_t kWritable = 1u << 1;
inline constexpr uint32_t kHangup = 1u << 2;  // peer closed its side: reads will see EOF
inline constexpr uint32_t kError = 1u << 3;   // a socket error is pending (SO_ERROR)

}  // namespace weft
