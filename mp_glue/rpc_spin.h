/*
 * rpc_spin.h: whether a stream's waits spin before they sleep, learnt from how many packets
 * each mode moves (rpc_stream.c carries out the waits). Plain C, no MicroPython: the tuner
 * takes the clock as an argument, so that tests can drive it (tests/unix/test_spin_tuner.py).
 */
#ifndef OMV_RPC_MP_GLUE_RPC_SPIN_H
#define OMV_RPC_MP_GLUE_RPC_SPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define RPC_SPIN_EPOCH_SHIFT 15     /* epochs of 2**15 us (33 ms) */
#define RPC_SPIN_EXPLORE_MIN 16     /* a period of epochs that ends with a try of the other mode */
#define RPC_SPIN_EXPLORE_MAX 256    /* (16 to 256 epochs, 0.5 to 8.6 s) */
#define RPC_SPIN_TRY_EPOCHS 4       /* epochs a try lasts (>= 2, < RPC_SPIN_EXPLORE_MIN - 2) */
#define RPC_SPIN_EPOCH_MIN_PACKETS 16 /* an epoch with fewer packets measured nothing */

/* What a stream's waits learnt about spinning. */
typedef struct rpc_spin {
    uint32_t window_us;      /* how long the next spin may check: adapts below spin_us */
    uint32_t epoch;          /* the clock's epoch now */
    uint32_t epoch_packets;  /* packets (recv or send with a timeout) ended in it */
    uint32_t best_sum;       /* those counts in the 2 epochs before a try of the other mode */
    uint32_t tried_sum;      /* and in the last 2 epochs of the try */
    uint32_t explore_every;  /* a period of this many epochs ends with a try (a power of 2) */
    bool spin_is_best;       /* the best mode so far */
    bool spinning;           /* this epoch spins */
    bool cannot_poll;        /* the stream's ioctl cannot tell readiness: never spin */
} rpc_spin_t;

/* A stream's tuner at the start: spinning, with a window of window_us. */
static inline void rpc_spin_init(rpc_spin_t *sp, uint32_t window_us) {
    memset(sp, 0, sizeof(*sp));
    sp->window_us = window_us;
    sp->spinning = true;
    sp->spin_is_best = true;
    sp->explore_every = RPC_SPIN_EXPLORE_MIN;
}

/* Spinning pays when the peer answers within the spin and the spin keeps no one else off a
 * core: a peer on another core of an idle machine. Otherwise the checks only burn CPU time
 * that the peer or the rest of the machine could use: on a machine with more runnable work
 * than cores, a process that spins counts as busy to the scheduler and is woken later. So:
 * - the window adapts: a wait that slept and was answered later than a whole spin would have
 *   covered halves it; one answered within it restores it;
 * - whether to spin at all is measured, in epochs of the microsecond clock: epochs spin or
 *   sleep as the mode that did best so far, and a few epochs now and then try the other mode,
 *   which becomes the best when it moved clearly more packets (recv and send with a timeout)
 *   in the same time (rpc_spin_account). Counting packets per epoch counts the rare long
 *   stall too: a process that spins on a busy machine makes most calls faster and some a few
 *   milliseconds slower. The epochs follow the clock, so that two peers on one machine (one
 *   clock) try the other mode together: when both spin on a busy machine, one peer that
 *   sleeps alone gains nothing. */

/* Which mode a try makes the best. Spinning costs CPU time, and on a busy machine an epoch's
 * count is noisy: spinning is taken only when it moved half as many packets again as
 * sleeping, and kept while it moves more than 8/7 of sleeping's. */
static inline bool rpc_spin_is_best_after(bool spin_was_best, uint32_t spinning_packets, uint32_t sleeping_packets) {
    return spin_was_best ? (uint64_t)spinning_packets * 7 > (uint64_t)sleeping_packets * 8
        : (uint64_t)spinning_packets * 2 >= (uint64_t)sleeping_packets * 3;
}

static inline void rpc_spin_account(rpc_spin_t *sp, uint32_t now_us) {
    uint32_t epoch = now_us >> RPC_SPIN_EPOCH_SHIFT;
    if (epoch == sp->epoch) {
        sp->epoch_packets++;
        return;
    }
    /* A new epoch (this packet is counted in it). The other mode is tried for
     * RPC_SPIN_TRY_EPOCHS epochs at the end of each period of explore_every epochs, and the
     * packets of its last 2 epochs (the first ones still pay for the mode before: a process
     * that spun is woken later for a while on a busy machine) are compared with those of the
     * 2 epochs right before the try: the work changes over time (a script turns from small
     * calls to large ones), and counts from further back would compare the modes on other
     * work. Epochs that moved few packets (an idle script, a slow peer) tell nothing. */
    uint32_t packets = sp->epoch_packets;
    uint32_t every = sp->explore_every;
    uint32_t position = sp->epoch % every;
    bool trying = sp->spinning != sp->spin_is_best;
    if (position < every - RPC_SPIN_TRY_EPOCHS - 2) {
        sp->best_sum = sp->tried_sum = 0;
    } else if (position < every - RPC_SPIN_TRY_EPOCHS) {
        sp->best_sum += trying ? 0 : packets;
    } else if (position >= every - 2 && trying) {
        sp->tried_sum += packets;
    }
    if (position == every - 1 && trying
        && (sp->tried_sum >= 2 * RPC_SPIN_EPOCH_MIN_PACKETS || sp->best_sum >= 2 * RPC_SPIN_EPOCH_MIN_PACKETS)) {
        /* Each try that changes nothing doubles the time to the next, up to
         * RPC_SPIN_EXPLORE_MAX epochs: trying costs. */
        bool spin_is_best = sp->spinning ? rpc_spin_is_best_after(false, sp->tried_sum, sp->best_sum)
            : rpc_spin_is_best_after(true, sp->best_sum, sp->tried_sum);
        if (spin_is_best != sp->spin_is_best) {
            sp->spin_is_best = spin_is_best;
            sp->explore_every = RPC_SPIN_EXPLORE_MIN;
        } else if (sp->explore_every < RPC_SPIN_EXPLORE_MAX) {
            sp->explore_every *= 2;
        }
    }
    /* (An epoch that is skipped, because no packet ended in it, counts as this one.) */
    sp->epoch = epoch;
    sp->epoch_packets = 1;
    bool explore = epoch % sp->explore_every >= sp->explore_every - RPC_SPIN_TRY_EPOCHS;
    sp->spinning = explore ? !sp->spin_is_best : sp->spin_is_best;
}

#endif /* OMV_RPC_MP_GLUE_RPC_SPIN_H */
