// contextvars: which Context is in force (the running fiber's, else the thread's), the
// copy-on-write update of its snapshot, and the thread's snapshot released at thread exit.
#include <weft/contextvars.hpp>

#include <algorithm>
#include <memory>

#include "detail/fiber.hpp"

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
    ~ThreadContextRelease() { context_unref(std::exchange(t_thread_context.data, nullptr)); }
};
thread_local ThreadContextRelease t_release;

using Values = std::vector<std::pair<uint64_t, ContextValue>>;

Values::const_iterator find_in(const Values& values, uint64_t key) noexcept {
    return std::lower_bound(values.begin(), values.end(), key,
                            [](const auto& entry, uint64_t k) { return entry.first < k; });
}

}  // namespace

void context_unref(ContextData* data) noexcept {
    if (data && data->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete data;
}

ContextSlot& current_context() noexcept {
    Fiber* f = current_fiber();
    return f ? f->context_vars : t_thread_context;
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
    return context_find(current_context().data, key);
}

std::pair<ContextValue, uint64_t> context_set(uint64_t key, ContextValue value) {
    Fiber* f = current_fiber();
    ContextSlot& slot = f ? f->context_vars : t_thread_context;
    if (!f) t_release.armed = true;
    if (slot.id == 0) slot.id = g_next_context_id.fetch_add(1, std::memory_order_relaxed);
    const uint64_t id = slot.id;
    ContextData* data = slot.data;
    auto found = data ? find_in(data->values, key) : Values::const_iterator{};
    bool present = data && found != data->values.end() && found->first == key;
    if (!present && !value) return {nullptr, id};  // removing what is not there

    // Only this Context holds the snapshot (acquire: whoever dropped theirs is done
    // reading it): change it in place. Otherwise change a copy, then publish the copy.
    if (data && data->refs.load(std::memory_order_acquire) == 1) {
        auto it = data->values.begin() + (found - data->values.cbegin());
        ContextValue old;
        if (present) {
            old = std::exchange(it->second, std::move(value));
            if (!it->second) data->values.erase(it);
        } else {
            data->values.insert(it, {key, std::move(value)});
        }
        if (data->values.empty()) context_unref(std::exchange(slot.data, nullptr));
        return {std::move(old), id};
    }
    auto copy = std::make_unique<ContextData>();
    ContextValue old;
    if (data) {
        copy->values.reserve(data->values.size() + (present ? 0 : 1));
        copy->values.assign(data->values.begin(), data->values.end());
    }
    auto it = copy->values.begin() + (data ? found - data->values.cbegin() : 0);
    if (present) {
        old = it->second;
        if (value)
            it->second = std::move(value);
        else
            copy->values.erase(it);
    } else {
        copy->values.insert(it, {key, std::move(value)});
    }
    context_unref(data);
    slot.data = copy->values.empty() ? nullptr : copy.release();
    return {std::move(old), id};
}

}  // namespace detail

Context copy_context() {
    Context c;
    c.slot_.data = detail::context_ref(detail::current_context().data);
    return c;
}

}  // namespace weft
