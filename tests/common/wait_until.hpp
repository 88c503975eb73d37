// Waiting for a condition in a test instead of sleeping for a while and hoping it has
// happened by then. A loaded CI machine (sanitizers, other jobs on two cores) can stall
// the test process for a second or two at any point, so "the handler is running 50 ms
// later" is not something a test may assume.
#pragma once

#include <chrono>

#include <weft/weft.hpp>

namespace weft::testing {

// From a fiber: polls pred() every millisecond until it holds or `limit` has passed, and
// returns pred(). The limit only bounds a failing test: a passing one goes on as soon as
// pred() holds.
template <class Pred>
bool wait_until(Pred pred, Duration limit = std::chrono::seconds(10)) {
    const TimePoint deadline = Clock::now() + limit;
    while (!pred()) {
        if (Clock::now() >= deadline) return pred();
        weft::sleep(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace weft::testing
