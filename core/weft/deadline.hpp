// Deadlines that saturate: a duration too large for the clock means "never", as in Go,
// Tokio and asyncio, instead of overflowing `now + d` into the past (which froze the loop:
// a wrapped deadline fires at once, or the poll timeout goes wrong for every other timer).
// Every place a user's duration becomes a deadline goes through here.
#pragma once

#include <chrono>

#include <weft/handle.hpp>

namespace weft {

// d as a Duration, rounded up; clamped to Duration's range instead of overflowing.
template <class Rep, class Period>
constexpr Duration saturating_duration(std::chrono::duration<Rep, Period> d) noexcept {
    using Seconds = std::chrono::duration<double>;
    // A second's margin keeps the rounding of the double comparison away from the edge.
    if (Seconds(d).count() >= Seconds(Duration::max()).count() - 1.0) return Duration::max();
    if (Seconds(d).count() <= Seconds(Duration::min()).count() + 1.0) return Duration::min();
    return std::chrono::ceil<Duration>(d);
}

// now + d: now itself for d <= 0, TimePoint::max() ("never") when it would pass the end of
// the clock.
template <class Rep, class Period>
constexpr TimePoint deadline_after(std::chrono::duration<Rep, Period> d, TimePoint now) noexcept {
    if (d <= d.zero()) return now;
    Duration step = saturating_duration(d);
    if (step >= TimePoint::max() - now) return TimePoint::max();
    return now + step;
}

template <class Rep, class Period>
TimePoint deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
    return deadline_after(d, Clock::now());
}

}  // namespace weft
