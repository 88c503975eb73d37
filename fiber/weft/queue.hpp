// asyncio.Queue, PriorityQueue and LifoQueue for fibers of one loop: bounded (maxsize > 0)
// or unbounded; put/get suspend, *_nowait throw QueueFull / QueueEmpty; task_done/join
// track unfinished work. FIFO among waiting getters and putters.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include <weft/error.hpp>
#include <weft/sync.hpp>

namespace weft {

class QueueFull : public Error {
public:
    QueueFull() : Error(std::errc::no_buffer_space, "queue is full") {}
};
class QueueEmpty : public Error {
public:
    QueueEmpty()
        : Error(std::errc::resource_unavailable_try_again, "queue is empty") {}
};

namespace detail {

template <class T>
struct FifoStore {
    std::deque<T> items;
    void push(T v) { items.push_back(std::move(v)); }
    T pop() {
        T v = std::move(items.front());
        items.pop_front();
        return v;
    }
    size_t size() const noexcept { return items.size(); }
};

template <class T>
struct LifoStore {
    std::vector<T> items;
    void push(T v) { items.push_back(std::move(v)); }
    T pop() {
        T v = std::move(items.back());
        items.pop_back();
        return v;
    }
    size_t size() const noexcept { return items.size(); }
};

template <class T, class Compare>
struct HeapStore {  // smallest first, as asyncio's heapq
    std::vector<T> items;
    static bool after(const T& a, const T& b) { return Compare{}(b, a); }
    void push(T v) {
        items.push_back(std::move(v));
        std::push_heap(items.begin(), items.end(), after);
    }
    T pop() {
        std::pop_heap(items.begin(), items.end(), after);
        T v = std::move(items.back());
        items.pop_back();
        return v;
    }
    size_t size() const noexcept { return items.size(); }
};

template <class T, class Store>
class BasicQueue {
public:
    explicit BasicQueue(size_t maxsize = 0) : maxsize_(maxsize) {}

    size_t qsize() const noexcept { return store_.size(); }
    size_t maxsize() const noexcept { return maxsize_; }
    bool empty() const noexcept { return store_.size() == 0; }
    bool full() const noexcept { return maxsize_ > 0 && store_.size() >= maxsize_; }

    void put(T item) {
        while (full()) wait_on(putters_, "Queue::put");
        put_nowait(std::move(item));
    }
    void put_nowait(T item) {
        if (full()) throw QueueFull();
        store_.push(std::move(item));
        ++unfinished_;
        finished_.clear();
        getters_.notify_one();
    }
    T get() {
        while (empty()) wait_on(getters_, "Queue::get");
        return get_nowait();
    }
    T get_nowait() {
        if (empty()) throw QueueEmpty();
        T item = store_.pop();
        putters_.notify_one();
        return item;
    }
    // A consumer finished an item it got; InvalidStateError if called too often.
    void task_done() {
        if (unfinished_ == 0) throw InvalidStateError("Queue::task_done called too many times");
        if (--unfinished_ == 0) finished_.set();
    }
    // Waits until every item put has been marked task_done.
    void join() {
        if (unfinished_ > 0) finished_.wait();
    }

private:
    // Wait for a turn; a cancelled waiter that was already notified passes the turn on.
    void wait_on(WaitList& list, const char* what) {
        WaitList::Node node;
        try {
            list.wait(node, what);
        } catch (const Cancelled&) {
            if (node.notified) list.notify_one();
            throw;
        }
    }

    Store store_;
    size_t maxsize_;
    size_t unfinished_ = 0;
    Event finished_;
    WaitList getters_;
    WaitList putters_;
};

}  // namespace detail

template <class T>
using Queue = detail::BasicQueue<T, detail::FifoStore<T>>;
template <class T>
using LifoQueue = detail::BasicQueue<T, detail::LifoStore<T>>;
template <class T, class Compare = std::less<T>>
using PriorityQueue = detail::BasicQueue<T, detail::HeapStore<T, Compare>>;

}  // namespace weft
