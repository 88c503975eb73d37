// asyncio.sleep: suspend the calling fiber for a while. sleep(0) lets other ready work run.
#pragma once

#include <chrono>
#include <utility>

#include <weft/loop.hpp>

namespace weft {

// Suspends the calling fiber for `delay` (a cancellation point); a delay of zero or less
// only yields to the other ready work (asyncio), one past the clock's range sleeps until
// cancelled. Throws InvalidStateError outside a fiber.
void sleep(Duration delay);

template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> delay) {
    sleep(saturating_duration(delay));
}

// asyncio.sleep(delay, result): sleeps, then returns `result`.
template <class Rep, class Period, class T>
T sleep(std::chrono::duration<Rep, Period> delay, T result) {
    sleep(saturating_duration(delay));
    return result;
}

}  // namespace weft
