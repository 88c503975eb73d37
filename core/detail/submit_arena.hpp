// Where submissions (call_soon_threadsafe's nodes) live: carved in order from a chunk that
// belongs to the submitting thread, and given back one by one by whichever thread
// destroys them (the loop's, mostly). A malloc per node would be freed on the loop's
// thread, away from the heap it came from: in mimalloc that remote free, and the
// producer's later collection of it, were a third of a cross-thread submission's
// instructions (issue 18). Carving is a bump of a thread-local pointer; giving back is
// one atomic decrement of the chunk's count, a line the loop's thread keeps to itself
// while the producer fills the rest of the chunk.
//
// Under AddressSanitizer the nodes come from malloc instead, so that a use after free is
// still caught; ThreadSanitizer sees the chunks' counts and checks them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

// Any thread. Throws std::bad_alloc.
void* allocate_submission(std::size_t size);
// Any thread, once per allocation.
void free_submission(void* p) noexcept;
// Chunks not yet given back to the allocator, all threads together (for tests; always 0
// under AddressSanitizer).
int64_t submission_chunks() noexcept;

}  // namespace weft::detail
