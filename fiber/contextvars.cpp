// contextvars: which Context is in force (the running fiber's, else the thread's), the
// copy-on-write update of its snapshot, and the thread's snapshot released at thread exit.
#include <weft/contextvars.hpp>

#include <algorithm>
#include <memory>

#include "fiber/detail/fiber.hpp"

namespace weft {

namespace detail {

// Plain data, so initial-exec TLS without a guard; see ThreadContextRelease.
thread_local ContextSlot t_thread_context __attribute__((tls_model("initial-exec"))) = {};

namespace {

std::atomic<uint64_t> g_next_var_key{1};
std::atomic<uint64_t> g_next_context_id{1};

// Drops the thread's snapshot when the thread ends; constructed (and so registered to run
// at thread exit) by the first set() made off a fiber on that thread.
struct ThreadContextRelease {
    bool armed = false;
    ~ThreadContextRelease() { t_thread_context.release(); }
};
thread_local ThreadContextRelease t_release;

using Values = std::vector<std::pair<uint64_t, ContextValue>>;

Values::const_iterator find_in(const Values& values, uint64_t key) noexcept {
    return std::lower_bound(values.begin(), values.end(), key,
                            [](const auto& entry, uint64_t k) { return entry.first < k; });
}

}  // namespace

void context_unref(ContextData* data) noexcept {
    if (data->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete data;
}

ContextSlot& current_context() noexcept {
    Fiber* f = current_fiber();
    return f ? f->context_vars : t_thread_context;
}

uint64_t current_context_id() noexcept {
    const ContextSlot& slot = current_context();
    return slot.bits && !slot.borrowed() ? slot.data()->owner : 0;
}

uint64_t new_context_var_key() noexcept {
    return g_next_var_key.fetch_add(1, std::memory_order_relaxed);
}

const ContextValue* context_find(const ContextData* data, uint64_t key) noexcept {
    if (!data) return nullptr;
    auto it = find_in(data->values, key);
    return it != data->values.end() && it->first == key ? &it->second : nullptr;
}

const ContextValue* context_find(uint64_t key) noexcept {
    return context_find(current_context().data(), key);
}

// The snapshot is never dropped when its last value goes: it carries the Context's id,
// which tokens made earlier still name.
std::pair<ContextValue, uint64_t> context_set(uint64_t key, ContextValue value) {
    Fiber* f = current_fiber();
    ContextSlot& slot = f ? f->context_vars : t_thread_context;
    if (!f) t_release.armed = true;
    ContextData* data = slot.data();
    auto found = data ? find_in(data->values, key) : Values::const_iterator{};
    bool present = data && found != data->values.end() && found->first == key;
    if (!present && !value) return {nullptr, current_context_id()};  // nothing to remove

    auto change = [&](ContextData& d, Values::const_iterator at) {
        auto it = d.values.begin() + (at - d.values.cbegin());
        ContextValue old;
        if (!present) {
            d.values.insert(it, {key, std::move(value)});
        } else if (value) {
            old = std::exchange(it->second, std::move(value));
        } else {
            old = std::move(it->second);
            d.values.erase(it);
        }
        return old;
    };
    // Only this Context holds the snapshot (acquire: whoever dropped theirs is done
    // reading it): change it in place, first making it this Context's own if borrowed.
    if (data && data->refs.load(std::memory_order_acquire) == 1) {
        ContextValue old = change(*data, found);
        if (slot.borrowed()) {
            data->owner = g_next_context_id.fetch_add(1, std::memory_order_relaxed);
            slot.bits = reinterpret_cast<uintptr_t>(data);
        }
        return {std::move(old), data->owner};
    }
    // Shared: change a copy, then publish it. A borrowed or empty slot gets its id now.
    auto copy = std::make_unique<ContextData>();
    if (data) copy->values = data->values;
    ContextValue old = change(*copy, data ? copy->values.cbegin() + (found - data->values.cbegin())
                                          : copy->values.cbegin());
    copy->owner = data && !slot.borrowed()
                      ? data->owner
                      : g_next_context_id.fetch_add(1, std::memory_order_relaxed);
    if (data) context_unref(data);
    slot.bits = reinterpret_cast<uintptr_t>(copy.release());
    return {std::move(old), slot.data()->owner};
}

}  // namespace detail

Context copy_context() {
    Context c;
    c.slot_ = detail::current_context().copy();
    return c;
}

}  // namespace weft
