// Generator hand-off: the consumer wakes the producer and suspends until a value or the
// end arrives; the producer stores a value, wakes the consumer and suspends until asked.
#include <weft/generator.hpp>

#include "detail/fiber.hpp"

namespace weft::detail {

bool GeneratorShared::advance(const std::function<Task<void>()>& start) {
    consumer = require_fiber("Generator::next");
    if (finished) {
        if (task) task.result();  // rethrows the body's exception, once more if asked
        return false;
    }
    has_value = false;
    if (!task) {
        task = start();
    } else {
        want_next = true;
        wake(producer);
    }
    while (!has_value && !finished) suspend(consumer);
    if (has_value) return true;
    task.result();
    return false;
}

void GeneratorShared::yielded() {
    has_value = true;
    want_next = false;
    wake(consumer);
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

}  // namespace weft::detail
