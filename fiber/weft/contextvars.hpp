// contextvars: ContextVar<T>, its Token, Context and copy_context. Every task runs in a
// Context of its own, a copy of its creator's taken when the task is created (as
// asyncio's create_task copies contextvars.copy_context()); code off a fiber (loop
// callbacks, plain threads) uses its thread's Context. to_thread and
// run_coroutine_threadsafe carry the caller's Context across; run_in_executor does not.
//
// Why not a thread_local: every fiber on a thread shares it, so per-request state kept in
// one leaks between the requests that thread serves at once. A ContextVar is per task.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/error.hpp>

namespace weft {

// contextvars' LookupError: ContextVar::get() found no value and the variable has no
// default (code() is errc::lookup_failed).
class LookupError : public Error {
public:
    explicit LookupError(const std::string& what)
        : Error(errc::lookup_failed, what) {}
};

namespace detail {

using ContextValue = std::shared_ptr<const void>;  // a ContextVar<T>'s value, a const T

// A Context's values: an immutable snapshot, sorted by variable key, shared copy-on-write
// by every Context (and thread) that holds it. Its count is atomic: snapshots cross
// threads with to_thread. Changed in place only while one Context alone holds it.
struct ContextData {
    std::atomic<uint32_t> refs{1};
    uint64_t owner = 0;  // the id of the Context that made it (Token checks)
    std::vector<std::pair<uint64_t, ContextValue>> values;
};
void context_unref(ContextData* data) noexcept;

// A Context in force: a task's (in its Fiber), a thread's, or a weft::Context object's.
// One word, so that a new task's costs one pointer copy (null while no variable was ever
// set) and one reference: its snapshot, with bit 0 set while borrowed — shared with the
// Context it was copied from, whose id it carries — until this Context's first set()
// takes a snapshot (and an id) of its own. Touched only by the fiber or thread it is for.
struct ContextSlot {
    uintptr_t bits = 0;  // ContextData* | borrowed; an owned reference

    ContextData* data() const noexcept {
        return reinterpret_cast<ContextData*>(bits & ~uintptr_t(1));
    }
    bool borrowed() const noexcept { return bits & 1; }
    // A new Context's slot with these values (contextvars' Context.copy()).
    ContextSlot copy() const noexcept {
        if (!bits) return {};
        data()->refs.fetch_add(1, std::memory_order_relaxed);
        return {bits | 1};
    }
    void release() noexcept {
        if (bits) context_unref(data());
        bits = 0;
    }
};

// The Context in force: the running fiber's, or off a fiber the calling thread's.
ContextSlot& current_context() noexcept;
// The current Context's id: 0 until it set a variable (no Token can name it before).
uint64_t current_context_id() noexcept;
uint64_t new_context_var_key() noexcept;
// The current Context's value of key, or null. Valid until that Context next changes.
const ContextValue* context_find(uint64_t key) noexcept;
const ContextValue* context_find(const ContextData* data, uint64_t key) noexcept;
// Sets key to value in the current Context (removes it if value is null). Returns the
// previous value (null: none) and the Context's id (assigned now if it had none).
std::pair<ContextValue, uint64_t> context_set(uint64_t key, ContextValue value);

}  // namespace detail

template <class T>
class ContextVar;

// contextvars.Token: what ContextVar::set returns, for ContextVar::reset. Usable once,
// in the Context that made it. Move-only.
template <class T>
class Token {
public:
    Token(Token&&) noexcept = default;
    Token& operator=(Token&&) noexcept = default;

    // Token.old_value: the variable's value before set(); nullopt for Token.MISSING.
    std::optional<T> old_value() const {
        if (!old_) return std::nullopt;
        return *static_cast<const T*>(old_.get());
    }
    bool used() const noexcept { return used_; }

private:
    friend class ContextVar<T>;
    Token(uint64_t key, uint64_t context, detail::ContextValue old) noexcept
        : key_(key), context_(context), old_(std::move(old)) {}

    uint64_t key_;
    uint64_t context_;
    detail::ContextValue old_;
    bool used_ = false;
};

// contextvars.ContextVar: a variable with one value per Context. T must be copyable; get()
// returns a copy (store a std::shared_ptr for big or shared state). A value may be read
// from, and destroyed on, another thread than the one that set it (to_thread). Create
// variables once (at namespace scope, as Python's module-level ones); not copyable.
template <class T>
class ContextVar {
public:
    explicit ContextVar(std::string name) : name_(std::move(name)) {}
    ContextVar(std::string name, T default_value)
        : name_(std::move(name)), default_(std::move(default_value)) {}
    ContextVar(const ContextVar&) = delete;
    ContextVar& operator=(const ContextVar&) = delete;

    const std::string& name() const noexcept { return name_; }

    // get(): the value in the current Context, else the variable's default, else
    // LookupError.
    T get() const {
        if (const detail::ContextValue* v = detail::context_find(key_)) return value(*v);
        if (default_) return *default_;
        throw LookupError("ContextVar '" + name_ + "' has no value and no default");
    }
    // get(fallback): the value in the current Context, else fallback (not the default).
    T get(T fallback) const {
        if (const detail::ContextValue* v = detail::context_find(key_)) return value(*v);
        return fallback;
    }

    // set(): the variable's new value in the current Context; the Token undoes it.
    Token<T> set(T value) {
        auto [old, context] =
            detail::context_set(key_, std::make_shared<const T>(std::move(value)));
        return Token<T>(key_, context, std::move(old));
    }

    // reset(token): the value (or its absence) before the set() that made token.
    // InvalidStateError if the token was used already; weft::Error (invalid_argument, as
    // Python's ValueError) if another variable or another Context made it.
    void reset(Token<T>& token) {
        if (token.used_)
            throw InvalidStateError("ContextVar '" + name_ + "': Token has already been used once");
        if (token.key_ != key_)
            throw Error(std::errc::invalid_argument,
                        "ContextVar '" + name_ + "': Token was created by a different ContextVar");
        if (token.context_ != detail::current_context_id())
            throw Error(std::errc::invalid_argument,
                        "ContextVar '" + name_ + "': Token was created in a different Context");
        detail::context_set(key_, token.old_);
        token.used_ = true;
    }

    uint64_t key() const noexcept { return key_; }  // identifies the variable in a Context

private:
    static T value(const detail::ContextValue& v) { return *static_cast<const T*>(v.get()); }

    uint64_t key_ = detail::new_context_var_key();  // never reused: safe after destruction
    std::string name_;
    std::optional<T> default_;
};

// contextvars.Context: a set of ContextVar values. Move-only (a Python Context is one
// object shared by reference; copy() makes another one). Use it from one thread at a time.
class Context {
public:
    Context() noexcept = default;  // contextvars.Context(): empty
    ~Context() { slot_.release(); }
    Context(Context&& o) noexcept : slot_(std::exchange(o.slot_, {})), entered_(o.entered_) {}
    Context& operator=(Context&& o) noexcept {
        std::swap(slot_, o.slot_);
        std::swap(entered_, o.entered_);
        return *this;
    }

    // Context.copy(): a new Context with the same values.
    Context copy() const {
        Context c;
        c.slot_ = slot_.copy();
        return c;
    }

    // Context.run(fn): calls fn() with this Context in force on the calling fiber (or
    // thread), then puts the previous one back; what fn set stays in this Context.
    // InvalidStateError if this Context is already running somewhere.
    template <class F>
    decltype(auto) run(F&& fn) {
        if (entered_) throw InvalidStateError("Context::run: this Context is already entered");
        Enter scope(*this);
        return std::forward<F>(fn)();
    }

    // Context[var] / var in Context: the variable's value here, if it has one.
    template <class T>
    std::optional<T> get(const ContextVar<T>& var) const {
        if (const detail::ContextValue* v = detail::context_find(slot_.data(), var.key()))
            return *static_cast<const T*>(v->get());
        return std::nullopt;
    }
    size_t size() const noexcept { return slot_.bits ? slot_.data()->values.size() : 0; }

private:
    friend Context copy_context();
    // Swaps this Context with the one in force for the scope; the same slot on the way
    // out, even if the fiber suspended in between.
    class Enter {
    public:
        explicit Enter(Context& c) noexcept : c_(c), in_force_(detail::current_context()) {
            std::swap(c_.slot_, in_force_);
            c_.entered_ = true;
        }
        ~Enter() {
            std::swap(c_.slot_, in_force_);
            c_.entered_ = false;
        }
        Enter(const Enter&) = delete;
        Enter& operator=(const Enter&) = delete;

    private:
        Context& c_;
        detail::ContextSlot& in_force_;
    };

    detail::ContextSlot slot_;
    bool entered_ = false;
};

// contextvars.copy_context(): a copy of the Context in force (sharing its snapshot).
Context copy_context();

}  // namespace weft
