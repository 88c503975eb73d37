// A callback submitted from any thread (call_soon_threadsafe): an MPSC queue node that
// carries its own closure. Allocated from mimalloc, which is fast across threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <source_location>
#include <utility>

namespace weft::detail {

struct MpscNode {
    std::atomic<MpscNode*> next{nullptr};
};

class SubmitNode : public MpscNode {
public:
    explicit SubmitNode(std::source_location where) noexcept : where_(where) {}
    virtual ~SubmitNode() = default;
    virtual void invoke() = 0;

    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;

    const std::source_location& where() const noexcept { return where_; }

private:
    std::source_location where_;
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

}  // namespace weft::detail
