// The callback nodes behind Handle and TimerHandle (and the submission nodes of other
// threads): their allocation, and cancel().
#include <weft/handle.hpp>

#include "core/detail/block_alloc.hpp"
#include "core/detail/loop_state.hpp"

namespace weft {

namespace detail {

namespace {
// Callback nodes are made and freed on their loop's thread, most often one freed just
// before the next of the same type is made (a callback that schedules another). Each
// thread keeps up to kKeep freed blocks per 16-byte size class and hands them back
// before asking mimalloc: a node then costs a pop and a push instead of mimalloc's
// general paths. At most 16 classes x 32 blocks x 256 bytes (128 KiB) stay per thread,
// and only on a thread that made that many callbacks of a size at once.
// Sanitized builds skip the cache, so that ASan sees every free.
constexpr std::size_t kGrain = 16;
constexpr std::size_t kClasses = 16;  // nodes up to 256 bytes
constexpr uint32_t kKeep = 32;

struct FreeBlock {
    FreeBlock* next;
};
// Trivial and zero at thread start, so reaching it costs no initialisation check: no room
// anywhere sends the first free to keep_first(), which registers the thread's CacheOwner.
struct NodeCache {
    FreeBlock* head[kClasses];
    uint32_t room[kClasses];  // how many more blocks the class may keep
    bool owned;               // the thread's CacheOwner exists (or has run)
};
thread_local NodeCache t_nodes __attribute__((tls_model("initial-exec")));

struct CacheOwner {
    ~CacheOwner() {  // thread exit: the blocks go back, and frees after this bypass the cache
        for (std::size_t c = 0; c < kClasses; ++c) {
            while (FreeBlock* b = t_nodes.head[c]) {
                t_nodes.head[c] = b->next;
                free_block(b);
            }
            t_nodes.room[c] = 0;
        }
    }
};

[[gnu::noinline]] void keep_first(void* p, std::size_t c) noexcept {
    if (!t_nodes.owned) {
        static thread_local CacheOwner owner;
        (void)owner;
        t_nodes.owned = true;
        for (uint32_t& room : t_nodes.room) room = kKeep;
    }
    if (t_nodes.room[c] == 0) return free_block(p);
    auto* b = static_cast<FreeBlock*>(p);
    b->next = t_nodes.head[c];
    t_nodes.head[c] = b;
    --t_nodes.room[c];
}
}  // namespace

void* CallbackNode::operator new(std::size_t size) {
    if constexpr (!kSanitized) {
        std::size_t c = (size - 1) / kGrain;
        if (c < kClasses) {
            if (FreeBlock* b = t_nodes.head[c]) {
                t_nodes.head[c] = b->next;
                ++t_nodes.room[c];
                return b;
            }
            return allocate_block((c + 1) * kGrain);  // any node of its class fits it later
        }
    }
    return allocate_block(size);
}

void CallbackNode::operator delete(void* p, std::size_t size) noexcept {
    if constexpr (!kSanitized) {
        std::size_t c = (size - 1) / kGrain;
        if (c < kClasses) {
            if (t_nodes.room[c] == 0) [[unlikely]] return keep_first(p, c);
            auto* b = static_cast<FreeBlock*>(p);
            b->next = t_nodes.head[c];
            t_nodes.head[c] = b;
            --t_nodes.room[c];
            return;
        }
    }
    free_block(p);
}

void* SubmitNode::operator new(std::size_t size) {
    return detail::allocate_block(size);
}
void SubmitNode::operator delete(void* p) noexcept { detail::free_block(p); }
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
