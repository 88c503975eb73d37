// StackPool on its own: a stack handed out for the first time comes with its top page
// already in memory (faulted in by one madvise, cheaper than the fault its fiber would
// take), and only that page: the rest stays untouched, so RSS is what the fiber writes.
#include "fiber/detail/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace {
bool resident(const char* page_start) {
    unsigned char vec = 0;
    EXPECT_EQ(::mincore(const_cast<char*>(page_start), size_t(::getpagesize()), &vec), 0);
    return vec & 1;
}

// MADV_POPULATE_WRITE is Linux 5.14's; before it the pool leaves the page to its fault.
bool kernel_populates() {
#ifdef MADV_POPULATE_WRITE
    const size_t page = size_t(::getpagesize());
    void* p = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok = p != MAP_FAILED && ::madvise(p, page, MADV_POPULATE_WRITE) == 0;
    if (p != MAP_FAILED) ::munmap(p, page);
    return ok;
#else
    return false;
#endif
}

void expect_only_top_page_resident(const weft::detail::Stack& s) {
    const size_t page = size_t(::getpagesize());
    EXPECT_TRUE(resident(s.top() - page));
    EXPECT_FALSE(resident(s.top() - 2 * page));
    EXPECT_FALSE(resident(s.bottom()));
}
}  // namespace

#ifdef __linux__
TEST(StackPool, FreshSlabStacksComeWithTheirTopPageOnly) {
    if (!kernel_populates()) GTEST_SKIP() << "no MADV_POPULATE_WRITE (Linux < 5.14)";
    weft::detail::StackPool pool(64 * 1024);
    pool.set_guard_pages(false);
    weft::detail::Stack first, second;
    pool.allocate(first);   // makes a slab
    pool.allocate(second);  // from its free list, fresh too
    expect_only_top_page_resident(first);
    expect_only_top_page_resident(second);
    EXPECT_FALSE(first.fresh);
    EXPECT_FALSE(second.fresh);
    pool.release(second);
    pool.release(first);
}

TEST(StackPool, FreshGuardedStacksComeWithTheirTopPageOnly) {
    if (!kernel_populates()) GTEST_SKIP() << "no MADV_POPULATE_WRITE (Linux < 5.14)";
    weft::detail::StackPool pool(64 * 1024);
    weft::detail::Stack s;
    pool.allocate(s);
    ASSERT_TRUE(s.guarded);
    expect_only_top_page_resident(s);
    pool.release(s);
}
#endif
