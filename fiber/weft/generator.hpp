// Generator<T> (asyncio's `async for` over an async generator): the body runs in a fiber
// of its own and hands values out one at a time with yield(v); the consumer pulls them
// with next() or a range-for, suspending while the body produces. aclose() stops the body
// at its current yield and waits for its clean-up; dropping a generator before it
// finished cancels its body too, but nobody waits for that clean-up.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <weft/task.hpp>

namespace weft {

namespace detail {

// The hand-off between the consumer and the producer fiber. Shared by the Generator and
// its producer task, so a producer still unwinding after the Generator is gone is safe.
struct GeneratorShared {
    Fiber* consumer = nullptr;  // set only while a next() waits
    Fiber* producer = nullptr;  // set once the body started
    bool has_value = false;     // the slot holds a value nobody took yet
    bool want_next = false;
    bool producer_waiting = false;  // the producer is suspended in yielded()
    bool finished = false;
    bool abandoned = false;
    Task<void> task;

    // Consumer: run the body to its next yield or its end; false at the end, rethrows
    // what the body threw. `start` spawns the producer on the first call.
    bool advance(const std::function<Task<void>()>& start);
    // Producer, after storing a value: wake the consumer, wait to be asked for the next.
    // Throws Cancelled if the generator was abandoned.
    void yielded();
    void producer_started() noexcept;
    void producer_finished() noexcept;
    void abandon() noexcept;
    // abandon(), then wait until the body has finished; rethrows what its clean-up threw.
    void close_and_wait();
};

}  // namespace detail

template <class T>
class Generator {
    struct State : detail::GeneratorShared {
        std::optional<T> slot;
    };

public:
    // What the body receives: call it with each value.
    class Yield {
    public:
        void operator()(T value) {
            if (state_->abandoned) throw Cancelled("generator abandoned");
            state_->slot.emplace(std::move(value));
            state_->yielded();
        }

    private:
        friend class Generator;
        explicit Yield(std::shared_ptr<State> s) : state_(std::move(s)) {}
        std::shared_ptr<State> state_;
    };

    // body(yield) runs lazily, from the first next().
    template <class F>
    explicit Generator(F&& body) : state_(std::make_shared<State>()) {
        // The producer task holds the state weakly between runs: the state owns the task
        // handle, so a strong capture would keep both alive for ever.
        start_ = [weak = std::weak_ptr<State>(state_), body = std::forward<F>(body)]() mutable {
            return spawn([weak, body = std::move(body)]() mutable {
                std::shared_ptr<State> state = weak.lock();
                if (!state) return;
                state->producer_started();
                struct Finish {
                    State* s;
                    ~Finish() { s->producer_finished(); }
                } finish{state.get()};
                Yield yield(state);
                body(yield);
            });
        };
    }
    ~Generator() { state_->abandon(); }
    Generator(const Generator&) = delete;
    Generator& operator=(const Generator&) = delete;

    // asyncio's aclose(): the body sees Cancelled at its current yield (a later yield
    // throws it again), and this waits until the body has finished its clean-up; what that
    // clean-up throws (other than Cancelled) comes out here. Then next() gives nullopt.
    // Nothing to do if the body never started or already ended. Must be called from a fiber.
    void aclose() { state_->close_and_wait(); }

    // The next value, or nullopt once the body returned. Must be called from a fiber.
    std::optional<T> next() {
        if (!state_->advance(start_)) return std::nullopt;
        return std::exchange(state_->slot, std::nullopt);
    }

    class iterator {
    public:
        iterator() = default;
        explicit iterator(Generator* g) : g_(g) { ++*this; }
        T& operator*() { return *current_; }
        iterator& operator++() {
            current_ = g_->next();
            return *this;
        }
        bool operator==(const iterator& o) const { return !current_ && !o.current_; }

    private:
        Generator* g_ = nullptr;
        std::optional<T> current_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

private:
    std::shared_ptr<State> state_;
    std::function<Task<void>()> start_;
};

}  // namespace weft
