// Submission chunks (see submit_arena.hpp). A chunk is kChunkSize bytes at an address
// aligned to its size, so a node finds its chunk by masking its own address; nodes too
// big to carve get a chunk of their own with the same layout (the node starts in the
// chunk's first kChunkSize bytes, so the mask still finds the header).
#include "core/detail/submit_arena.hpp"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "core/detail/block_alloc.hpp"
#include "core/detail/sanitizers.hpp"

namespace weft::detail {

#ifndef WEFT_ASAN

namespace {

constexpr std::size_t kChunkSize = 16 * 1024;
constexpr std::size_t kHeader = 64;       // the count, alone on its line
constexpr std::size_t kMaxCarved = 1024;  // bigger nodes get a chunk of their own
// A chunk's count starts here while its thread carves from it. Each node given back takes
// one off; when the thread moves on it takes off kHeld minus the nodes it carved, so the
// count reaches zero exactly when the last node is back and the thread is done with it.
constexpr int64_t kHeld = int64_t(1) << 40;

struct Chunk {
    std::atomic<int64_t> refs;
};

std::atomic<int64_t> g_chunks{0};  // a statistic for tests: relaxed

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

Chunk* new_chunk(std::size_t bytes, int64_t refs) {
    void* m = kSanitized ? std::aligned_alloc(kChunkSize, bytes) : mi_malloc_aligned(bytes, kChunkSize);
    if (!m) throw std::bad_alloc();
    g_chunks.fetch_add(1, std::memory_order_relaxed);
    return new (m) Chunk{refs};
}

// More given back than was carved: a node freed twice, or carved from a retired chunk. The
// chunk's memory may already be another's; going on would corrupt the heap.
[[noreturn, gnu::cold]] void over_released(Chunk* c) noexcept {
    std::fprintf(stderr, "weft: submission chunk %p released more often than its nodes were carved\n",
                 static_cast<void*>(c));
    std::abort();
}

Chunk* chunk_of(void* p) noexcept {
    return reinterpret_cast<Chunk*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t(kChunkSize - 1));
}

void drop(Chunk* c, int64_t n) noexcept {
    const int64_t before = c->refs.fetch_sub(n, std::memory_order_acq_rel);
    if (before != n) [[likely]] {
        if (before < n) over_released(c);
        return;
    }
    c->~Chunk();
    g_chunks.fetch_sub(1, std::memory_order_relaxed);
    if constexpr (kSanitized)
        std::free(c);
    else
        mi_free(c);
}

// The calling thread's chunk in progress. Trivially destructible, so the hot path reads it
// with no initialisation check; CarverExit retires it when the thread ends.
struct Carver {
    Chunk* chunk;
    char* next;
    char* end;
    int64_t carved;
    bool gone;  // the thread is exiting: one chunk per node from here on

    void retire() noexcept {
        if (chunk) drop(chunk, kHeld - carved);
        chunk = nullptr;
        next = end = nullptr;
    }
    void refill();
};

thread_local Carver t_carver{};

// Its destructor runs at the thread's exit. It writes to t_carver, another object, and not
// to itself: a destructor's stores to its own object are dead to the compiler, which may
// drop them (and, while Carver had this destructor, did drop `gone = true`).
struct CarverExit {
    ~CarverExit() {
        t_carver.retire();
        t_carver.gone = true;
    }
};

void Carver::refill() {
    if (!chunk) {
        static thread_local CarverExit at_exit;  // registered with the thread's first chunk
        (void)at_exit;
    }
    // Every node of the full chunk already back (the loop keeps up): carve it again,
    // while its lines are still in a cache.
    if (chunk && chunk->refs.load(std::memory_order_acquire) == kHeld - carved)
        chunk->refs.store(kHeld, std::memory_order_relaxed);
    else {
        retire();
        chunk = new_chunk(kChunkSize, kHeld);
    }
    carved = 0;
    next = reinterpret_cast<char*>(chunk) + kHeader;
    end = reinterpret_cast<char*>(chunk) + kChunkSize;
}

}  // namespace

void* allocate_submission(std::size_t size) {
    size = round_up(size, alignof(std::max_align_t));
    Carver& c = t_carver;
    if (size <= kMaxCarved && !c.gone) [[likely]] {
        if (std::size_t(c.end - c.next) < size) [[unlikely]] c.refill();
        void* p = c.next;
        c.next += size;
        ++c.carved;
        return p;
    }
    return reinterpret_cast<char*>(new_chunk(round_up(kHeader + size, kChunkSize), 1)) + kHeader;
}

void free_submission(void* p) noexcept { drop(chunk_of(p), 1); }

int64_t submission_chunks() noexcept { return g_chunks.load(std::memory_order_relaxed); }

#else

void* allocate_submission(std::size_t size) { return allocate_block(size); }
void free_submission(void* p) noexcept { free_block(p); }
int64_t submission_chunks() noexcept { return 0; }

#endif

}  // namespace weft::detail
