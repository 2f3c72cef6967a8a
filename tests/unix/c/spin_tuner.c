/* Drives the spin tuner of mp_glue/rpc_spin.h with a synthetic clock: each epoch moves as many
 * packets as the scenario gives its mode, and the checks look at the mode it settles on.
 * Built and run by tests/unix/test_spin_tuner.py; prints one line per failed check. */
#include <stdio.h>
#include "rpc_spin.h"

static int failures, checks;

#define CHECK(cond, ...) do { \
        checks++; \
        if (!(cond)) { \
            failures++; \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__); \
            printf("\n"); \
        } \
    } while (0)

/* Packets an epoch moves in each mode. */
typedef struct {
    uint32_t spinning, sleeping;
} rates_t;

/* Runs epochs [first, first + n) at rates; counts the epochs that spun. */
static uint32_t run(rpc_spin_t *sp, uint32_t first, uint32_t n, rates_t rates) {
    uint32_t spun = 0;
    for (uint32_t e = first; e < first + n; e++) {
        uint32_t t0 = e << RPC_SPIN_EPOCH_SHIFT;
        rpc_spin_account(sp, t0); /* the epoch's first packet: the tuner picks its mode */
        uint32_t packets = sp->spinning ? rates.spinning : rates.sleeping;
        spun += sp->spinning;
        for (uint32_t i = 1; i < packets; i++) {
            rpc_spin_account(sp, t0 + i % (1u << RPC_SPIN_EPOCH_SHIFT));
        }
    }
    return spun;
}

int main(void) {
    rpc_spin_t sp;
    const rates_t idle = { 3000, 1000 };    /* a peer on a free core: spinning triples calls */
    const rates_t busy = { 400, 700 };      /* more runnable work than cores */
    const rates_t close_call = { 1100, 1000 }; /* spinning 10% better: not worth its CPU */
    const rates_t quiet = { 5, 5 };         /* a script that calls now and then */

    /* Idle: spinning stays the best, and the tries of sleeping back off to the longest period. */
    rpc_spin_init(&sp, 100);
    uint32_t spun = run(&sp, 1, 4096, idle);
    CHECK(sp.spin_is_best, "idle: spinning should stay the best");
    CHECK(sp.explore_every == RPC_SPIN_EXPLORE_MAX, "idle: tries should back off to %u, at %u",
        RPC_SPIN_EXPLORE_MAX, (unsigned)sp.explore_every);
    CHECK(spun > 4096 * 9 / 10, "idle: %u of 4096 epochs spun", (unsigned)spun);

    /* Busy: the first try of sleeping makes it the best, and spinning is not taken back. */
    rpc_spin_init(&sp, 100);
    run(&sp, 1, RPC_SPIN_EXPLORE_MIN, busy);
    CHECK(!sp.spin_is_best, "busy: sleeping should be the best after the first try");
    spun = run(&sp, 1 + RPC_SPIN_EXPLORE_MIN, 4096, busy);
    CHECK(!sp.spin_is_best, "busy: sleeping should stay the best");
    CHECK(spun < 4096 / 10, "busy: %u of 4096 epochs spun", (unsigned)spun);
    CHECK(sp.explore_every == RPC_SPIN_EXPLORE_MAX, "busy: tries should back off, at %u", (unsigned)sp.explore_every);

    /* The machine frees up: spinning is taken back within one (longest) period. */
    run(&sp, 1 + RPC_SPIN_EXPLORE_MIN + 4096, RPC_SPIN_EXPLORE_MAX + 1, idle);
    CHECK(sp.spin_is_best, "freed: spinning should be the best again within %u epochs", RPC_SPIN_EXPLORE_MAX);

    /* From sleeping, 10% more packets do not make spinning the best (it needs 3/2)... */
    rpc_spin_init(&sp, 100);
    run(&sp, 1, RPC_SPIN_EXPLORE_MIN, busy);
    spun = run(&sp, 1 + RPC_SPIN_EXPLORE_MIN, 2048, close_call);
    CHECK(!sp.spin_is_best && spun < 2048 / 10,
        "close call: spinning 10%% better should not be taken (%u of 2048 epochs spun)", (unsigned)spun);
    /* ... while spinning is the best, 20% more keeps it, and 10% (below 8/7) does not. */
    rpc_spin_init(&sp, 100);
    run(&sp, 1, 2048, (rates_t){ 1200, 1000 });
    CHECK(sp.spin_is_best, "spinning 20%% better should be kept");
    run(&sp, 2049, 2048, close_call);
    CHECK(!sp.spin_is_best, "spinning 10%% better (below 8/7) should give way to sleeping");

    /* A quiet script: too few packets to judge; nothing changes and the tries do not back off. */
    rpc_spin_init(&sp, 100);
    run(&sp, 1, 1024, quiet);
    CHECK(sp.spin_is_best && sp.explore_every == RPC_SPIN_EXPLORE_MIN,
        "quiet: no judgement expected (best %d, every %u)", sp.spin_is_best, (unsigned)sp.explore_every);

    /* Two tuners on one clock try the other mode in the same epochs. */
    rpc_spin_t a, b;
    rpc_spin_init(&a, 100);
    rpc_spin_init(&b, 100);
    uint32_t apart = 0;
    for (uint32_t e = 1; e < 2048; e++) {
        rpc_spin_account(&a, e << RPC_SPIN_EPOCH_SHIFT);
        rpc_spin_account(&b, (e << RPC_SPIN_EPOCH_SHIFT) + 777);
        for (uint32_t i = 1; i < (a.spinning ? 700u : 900u); i++) {
            rpc_spin_account(&a, (e << RPC_SPIN_EPOCH_SHIFT) + i);
            rpc_spin_account(&b, (e << RPC_SPIN_EPOCH_SHIFT) + i + 777);
        }
        apart += a.spinning != b.spinning;
    }
    CHECK(apart == 0, "two peers: modes differed in %u epochs", (unsigned)apart);

    printf("%d checks, %d failed\n", checks, failures);
    return failures != 0;
}
