// Test-only <sys/event.h> for Linux: the part of FreeBSD's kqueue API that weft's kqueue
// backend uses, with FreeBSD's constant values and its pre-12 struct kevent (macOS's layout).
// kqueue() and kevent() come from tests/kqueue/kqueue_emulation.cpp, which emulates them on
// epoll and eventfd; putting this folder first on the include path lets
// core/reactor_kqueue.cpp compile unchanged. Filters and flags it does not emulate are
// deliberately absent, so code that needs them does not compile against it.
#ifndef WEFT_TESTS_KQUEUE_SYS_EVENT_H
#define WEFT_TESTS_KQUEUE_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kevent {
    uintptr_t ident;       // identifier: an fd, a signal number, a user-chosen id
    short filter;          // EVFILT_*
    unsigned short flags;  // EV_* actions and flags
    unsigned int fflags;   // filter-specific flags (NOTE_*)
    intptr_t data;         // filter-specific data
    void* udata;           // opaque, returned unchanged
};

#define EV_SET(kevp_, a, b, c, d, e, f)    \
    do {                                   \
        struct kevent* kevp = (kevp_);     \
        kevp->ident = (a);                 \
        kevp->filter = (short)(b);         \
        kevp->flags = (unsigned short)(c); \
        kevp->fflags = (unsigned int)(d);  \
        kevp->data = (e);                  \
        kevp->udata = (f);                 \
    } while (0)

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_SIGNAL (-6)
#define EVFILT_USER (-11)

// Actions
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
// Flags
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_SYSFLAGS 0xF000
// Returned values
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

// EVFILT_USER
#define NOTE_FFNOP 0x00000000
#define NOTE_FFAND 0x40000000
#define NOTE_FFOR 0x80000000
#define NOTE_FFCOPY 0xc0000000
#define NOTE_FFCTRLMASK 0xc0000000
#define NOTE_FFLAGSMASK 0x00ffffff
#define NOTE_TRIGGER 0x01000000

int kqueue(void);
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout);

#ifdef __cplusplus
}
#endif

#endif
