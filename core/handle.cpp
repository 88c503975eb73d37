// The callback nodes behind Handle and TimerHandle (and the submission nodes of other
// threads): their allocation, and cancel().
#include <weft/handle.hpp>

#include "core/detail/block_alloc.hpp"
#include "core/detail/loop_state.hpp"
#include "core/detail/submit_arena.hpp"

namespace weft {

namespace detail {
void* CallbackNode::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void CallbackNode::operator delete(void* p) noexcept { detail::free_block(p); }
void* SubmitNode::operator new(std::size_t size) {
    return detail::allocate_submission(size);
}
void SubmitNode::operator delete(void* p) noexcept { detail::free_submission(p); }
}  // namespace detail

void Handle::cancel() noexcept {
    if (!node_ || node_->cancelled_) return;
    node_->cancelled_ = true;
    if (node_->queued() && node_->loop_) {
        node_->loop_->s_->timers.remove(node_);
        node_->loop_ = nullptr;
        node_->unref();  // the heap's reference
    }
}

}  // namespace weft
