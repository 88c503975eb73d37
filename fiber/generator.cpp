// Generator hand-off: the consumer wakes the producer and suspends until a value or the
// end arrives; the producer stores a value, wakes the consumer and suspends until asked.
#include <weft/generator.hpp>

#include "fiber/detail/fiber.hpp"

namespace weft::detail {

bool GeneratorShared::advance(const std::function<Task<void>()>& start) {
    Fiber* me = require_fiber("Generator::next");
    if (abandoned) return false;  // closed by aclose()
    if (has_value) {  // yielded while no next() was waiting (an earlier one was cancelled)
        has_value = false;
        return true;
    }
    if (finished) {
        if (task) task.result();  // rethrows the body's exception, once more if asked
        return false;
    }
    if (!task) {
        task = start();
    } else if (producer_waiting) {
        want_next = true;
        wake(producer);
    }
    consumer = me;
    struct Leave {  // a cancelled next() must not leave a dangling consumer behind
        Fiber*& consumer;
        ~Leave() { consumer = nullptr; }
    } leave{consumer};
    const WaitRecord waiting{"Generator::next", this};
    WaitScope scope(me, waiting);
    while (!has_value && !finished) suspend(me);
    if (has_value) {
        has_value = false;
        return true;
    }
    task.result();
    return false;
}

void GeneratorShared::yielded() {
    has_value = true;
    want_next = false;
    if (consumer) wake(consumer);
    producer_waiting = true;
    struct Leave {
        bool& waiting;
        ~Leave() { waiting = false; }
    } leave{producer_waiting};
    const WaitRecord waiting{"Generator::yield", this};
    WaitScope scope(producer, waiting);
    while (!want_next) suspend(producer);
}

void GeneratorShared::producer_started() noexcept { producer = current_fiber(); }

void GeneratorShared::producer_finished() noexcept {
    finished = true;
    if (consumer && !abandoned) wake(consumer);
}

void GeneratorShared::abandon() noexcept {
    abandoned = true;
    if (task && !task.done()) task.cancel("generator abandoned");
}

void GeneratorShared::close_and_wait() {
    require_fiber("Generator::aclose");
    abandon();
    if (!task) return;
    task.base()->wait("Generator::aclose");  // a cancel of the caller propagates from here
    if (!task.cancelled() && task.base()->has_exception()) task.result();
}

}  // namespace weft::detail
