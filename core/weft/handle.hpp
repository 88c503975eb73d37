// Handles to scheduled callbacks (asyncio.Handle / TimerHandle): cancel before they run.
// A callback and its timer live in one node allocated from mimalloc; handles share it by
// a plain (non-atomic) reference count, so handles belong to their loop's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <utility>

#include <weft/detail/submit_node.hpp>
#include <weft/detail/timer_node.hpp>

namespace weft {

class Loop;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

namespace detail {

// A scheduled callback: the node of call_soon / call_later / call_at.
class CallbackNode : public TimerNode {
public:
    explicit CallbackNode(std::source_location where) noexcept : where_(where) {}
    virtual ~CallbackNode() = default;
    virtual void invoke() = 0;

    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;

    void ref() noexcept { ++refs_; }
    void unref() noexcept {
        if (--refs_ == 0) delete this;
    }

    const std::source_location& where() const noexcept { return where_; }

    uint32_t refs_ = 1;
    bool cancelled_ = false;
    Loop* loop_ = nullptr;  // set while queued in a loop's timer heap; loop thread only

private:
    std::source_location where_;
};

template <class F>
class CallbackFn final : public CallbackNode {
public:
    template <class G>
    CallbackFn(G&& fn, std::source_location where) : CallbackNode(where), fn_(std::forward<G>(fn)) {}
    void invoke() override { fn_(); }

private:
    F fn_;
};

}  // namespace detail

// Handle.cancel(): a cancelled callback never runs. Loop thread only.
class Handle {
public:
    Handle() noexcept = default;
    explicit Handle(detail::CallbackNode* node) noexcept : node_(node) {
        if (node_) node_->ref();
    }
    Handle(const Handle& o) noexcept : Handle(o.node_) {}
    Handle(Handle&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
    Handle& operator=(Handle o) noexcept {
        std::swap(node_, o.node_);
        return *this;
    }
    ~Handle() {
        if (node_) node_->unref();
    }

    // Prevents the callback from running; removes a pending timer from its heap at once.
    // Cancelling a callback that already ran, or twice, does nothing.
    void cancel() noexcept;
    bool cancelled() const noexcept { return node_ && node_->cancelled_; }
    explicit operator bool() const noexcept { return node_ != nullptr; }

protected:
    detail::CallbackNode* node_ = nullptr;
};

// TimerHandle: a Handle that also knows its deadline.
class TimerHandle : public Handle {
public:
    using Handle::Handle;
    TimePoint when() const noexcept { return node_ ? node_->deadline : TimePoint{}; }
};

// What call_soon_threadsafe returns: cancel() from any thread keeps the callback from
// running if the loop has not started it yet (asyncio's Handle from call_soon_threadsafe).
// Copyable; the callback's node lives until the loop and every handle are done with it.
class ThreadsafeHandle {
public:
    ThreadsafeHandle() noexcept = default;
    // Adopts the reference that node->add_handle_ref() made.
    explicit ThreadsafeHandle(detail::SubmitNode* node) noexcept : node_(node) {}
    ThreadsafeHandle(ThreadsafeHandle&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
    ThreadsafeHandle& operator=(ThreadsafeHandle&& o) noexcept {
        std::swap(node_, o.node_);
        return *this;
    }
    ThreadsafeHandle(const ThreadsafeHandle&) = delete;
    ThreadsafeHandle& operator=(const ThreadsafeHandle&) = delete;
    ~ThreadsafeHandle() {
        if (node_) node_->release();
    }

    void cancel() noexcept {
        if (node_) node_->cancel();
    }
    bool cancelled() const noexcept { return node_ && node_->cancelled(); }
    explicit operator bool() const noexcept { return node_ != nullptr; }

private:
    detail::SubmitNode* node_ = nullptr;
};

}  // namespace weft
