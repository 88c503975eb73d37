// The loop's I/O slots and IoWatch: one slot per watched fd, tagged with a generation so
// that events for an fd closed and reused since the poll are dropped; readiness is
// edge-like and owed edges are kept until the owner clears the direction.
#include <weft/io_watch.hpp>

#include <string>
#include <utility>

#include "core/detail/loop_state.hpp"

namespace weft {

using detail::IoSlot;
using detail::kNoSlot;

void Loop::State::on_io_event(uint64_t token, uint32_t events) {
    uint32_t index = uint32_t(token);
    if (index >= slots.size()) return;
    IoSlot& slot = slots[index];
    if (!slot.in_use || slot.gen != uint32_t(token >> 32)) return;  // stale: fd was reused
    slot.pending |= events;
    if (!slot.queued) {
        slot.queued = true;
        ready.push({&io_entry, this, uintptr_t(token)});
    }
}

// An fd's readiness: self is the State, arg the slot's token (index and generation).
const detail::ReadyKind Loop::State::io_entry = {
    .run = [](void* p, uintptr_t token) {
        auto* s = static_cast<State*>(p);
        uint32_t index = uint32_t(token);
        IoSlot& slot = s->slots[index];
        if (!slot.in_use || slot.gen != uint32_t(uint64_t(token) >> 32)) return;
        slot.queued = false;
        uint32_t fresh = slot.pending & ~slot.ready & (slot.interest | kHangup | kError);
        // An edge for a direction still marked ready is not reported now; an edge-triggered
        // backend will not repeat it, so clear_ready() reports it then.
        slot.missed |= slot.pending & slot.ready & (kReadable | kWritable);
        slot.ready |= slot.pending;
        slot.pending = 0;
        if (fresh == 0) return;
        s->dispatching = index;
        try {
            slot.callback(fresh);
        } catch (...) {
            s->report("Exception in I/O callback", "fd " + std::to_string(slot.fd));
        }
        s->dispatching = kNoSlot;
        if (s->free_after_dispatch) {
            s->free_after_dispatch = false;
            s->release_slot(index);
        }
    },
    .describe = [](void* p, uintptr_t token) {
        return "I/O callback (fd " + std::to_string(static_cast<State*>(p)->slots[uint32_t(token)].fd) + ")";
    },
    .locate = nullptr,
    .discard = [](void*, uintptr_t) { return std::string(); },  // the watch is detached anyway
};

uint32_t Loop::State::allocate_slot(int fd) {
    if (fd < 0) throw SystemError(EBADF, "IoWatch(fd=" + std::to_string(fd) + ")");
    if (size_t(fd) >= slot_of_fd.size()) slot_of_fd.resize(size_t(fd) * 2 + 16, kNoSlot);
    if (slot_of_fd[size_t(fd)] != kNoSlot)
        throw SystemError(EEXIST, "IoWatch(fd=" + std::to_string(fd) +
                                      "): fd is already watched by this loop");
    uint32_t index;
    if (!free_slots.empty()) {
        index = free_slots.back();
        free_slots.pop_back();
    } else {
        index = uint32_t(slots.size());
        slots.emplace_back();
    }
    slots[index].fd = fd;
    slots[index].in_use = true;
    slot_of_fd[size_t(fd)] = index;
    return index;
}

// Unregister now; keep the callback alive if it is the one running.
void Loop::State::free_slot(uint32_t index) noexcept {
    IoSlot& slot = slots[index];
    // In a fork() child the poller is the parent's: unregistering would deafen the parent.
    if (reactor && !inherited()) reactor->remove(slot.fd);
    slot_of_fd[size_t(slot.fd)] = kNoSlot;
    slot.in_use = false;
    slot.owner = nullptr;
    --watched_fds;
    ++slot.gen;
    if (index == dispatching)
        free_after_dispatch = true;
    else
        release_slot(index);
}

void Loop::State::release_slot(uint32_t index) noexcept {
    IoSlot& slot = slots[index];
    slot.callback = nullptr;
    slot.fd = -1;
    slot.interest = slot.ready = slot.pending = slot.missed = 0;
    slot.queued = false;
    free_slots.push_back(index);
}

IoWatch::IoWatch(Loop& loop, int fd, uint32_t interest, Callback callback) {
    loop.check_open("IoWatch");
    Loop::State& s = *loop.s_;
    s.check_not_inherited("IoWatch");
    uint32_t index = s.allocate_slot(fd);
    IoSlot& slot = s.slots[index];
    try {
        s.reactor->add(fd, interest, slot.token(index));
    } catch (...) {
        s.slot_of_fd[size_t(fd)] = kNoSlot;
        slot.in_use = false;
        s.release_slot(index);
        throw;
    }
    ++s.watched_fds;
    slot.interest = interest;
    slot.callback = std::move(callback);
    slot.owner = this;
    loop_ = &loop;
    slot_ = index;
}

IoWatch::IoWatch(IoWatch&& other) noexcept
    : loop_(std::exchange(other.loop_, nullptr)), slot_(other.slot_) {
    if (loop_) loop_->s_->slots[slot_].owner = this;
}

IoWatch& IoWatch::operator=(IoWatch&& other) noexcept {
    if (this != &other) {
        reset();
        loop_ = std::exchange(other.loop_, nullptr);
        slot_ = other.slot_;
        if (loop_) loop_->s_->slots[slot_].owner = this;
    }
    return *this;
}

void IoWatch::reset() noexcept {
    if (!loop_) return;
    loop_->s_->free_slot(slot_);
    loop_ = nullptr;
}

int IoWatch::fd() const noexcept { return loop_ ? loop_->s_->slots[slot_].fd : -1; }

uint32_t IoWatch::ready() const noexcept { return loop_ ? loop_->s_->slots[slot_].ready : 0; }

void IoWatch::clear_ready(uint32_t bits) {
    if (!loop_) throw InvalidStateError("IoWatch::clear_ready: not registered (loop closed?)");
    Loop::State& s = *loop_->s_;
    s.check_not_inherited("IoWatch::clear_ready");
    IoSlot& slot = s.slots[slot_];
    slot.ready &= ~bits;
    if (bits & (kReadable | kWritable)) s.reactor->rearm(slot.fd, bits);
    if (uint32_t owed = slot.missed & bits) {
        slot.missed &= ~owed;
        s.on_io_event(slot.token(slot_), owed);
    }
}

void IoWatch::set_interest(uint32_t interest) {
    if (!loop_) throw InvalidStateError("IoWatch::set_interest: not registered (loop closed?)");
    loop_->s_->check_not_inherited("IoWatch::set_interest");
    IoSlot& slot = loop_->s_->slots[slot_];
    loop_->s_->reactor->modify(slot.fd, interest, slot.token(slot_));
    slot.interest = interest;
    slot.ready = slot.missed = 0;
}


}  // namespace weft
