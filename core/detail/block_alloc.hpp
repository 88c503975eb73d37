// Where weft's small control blocks (callbacks, submissions, jobs, fibers, futures) come
// from: mimalloc, whose per-thread heaps make them cheap to allocate here and free on
// another thread. Under a sanitizer they come from malloc instead: the sanitizers see
// malloc and not mimalloc's internals, so only then are these blocks checked (ASan's
// use-after-free) and their reuse across threads understood (TSan).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include <mimalloc.h>

#include "sanitizers.hpp"

namespace weft::detail {

inline void* allocate_block(std::size_t size) {
    void* p = kSanitized ? std::malloc(size) : mi_malloc(size);
    if (!p) throw std::bad_alloc();
    return p;
}

inline void free_block(void* p) noexcept {
    if constexpr (kSanitized)
        std::free(p);
    else
        mi_free(p);
}

}  // namespace weft::detail
