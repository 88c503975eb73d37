// A callback submitted from any thread (call_soon_threadsafe): an MPSC queue node that
// carries its own closure. Carved from the submitting thread's chunk (submit_arena.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <type_traits>
#include <utility>

namespace weft::detail {

struct MpscNode {
    std::atomic<MpscNode*> next{nullptr};
};

// Owned by the loop once submitted; a ThreadsafeHandle may share it (an atomic count, as
// handles live on other threads). The count is only touched when a handle exists.
class SubmitNode : public MpscNode {
public:
    explicit SubmitNode(std::source_location where) noexcept : where_(where) {}
    virtual ~SubmitNode() = default;
    virtual void invoke() = 0;

    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;

    const std::source_location& where() const noexcept { return where_; }

    // Before submission: a ThreadsafeHandle will share the node.
    void add_handle_ref() noexcept { refs_.store(2, std::memory_order_relaxed); }
    // Drops one reference (the loop's after running or at close, or the handle's).
    void release() noexcept {
        // Alone (the handle is gone, its release synchronised by this acquire): no RMW.
        if (refs_.load(std::memory_order_acquire) == 1 ||
            refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }
    void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
    bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
    // Before submission: the completion of work done elsewhere (wrap_future). Dropped
    // without a report if the loop closes first: nobody can await its result any more.
    void mark_completion() noexcept { completion_ = true; }
    // Loop close reports it as "never ran".
    bool worth_reporting() const noexcept { return !cancelled() && !completion_; }

private:
    std::source_location where_;
    std::atomic<uint32_t> refs_{1};
    std::atomic<bool> cancelled_{false};
    bool completion_ = false;
};

template <class F>
class SubmitFn final : public SubmitNode {
public:
    template <class G>
    SubmitFn(G&& fn, std::source_location where) : SubmitNode(where), fn_(std::forward<G>(fn)) {}
    void invoke() override { fn_(); }

private:
    F fn_;
};

// A submission of fn with the reference a ThreadsafeHandle will adopt.
template <class F>
SubmitNode* make_submission(F&& fn, std::source_location where) {
    auto* node = new SubmitFn<std::decay_t<F>>(std::forward<F>(fn), where);
    node->add_handle_ref();
    return node;
}

}  // namespace weft::detail
