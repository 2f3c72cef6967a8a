/*
 * transport_bus.h: what the I2C, SPI and CAN transports share. They drive a bus object
 * (machine.I2C, pyb.I2C, machine.SPI, pyb.SPI, machine.Pin, pyb.CAN) through its Python
 * methods: each method is looked up once at construction, and each transfer passes a
 * memoryview that is repointed at the packet (rpc_memoryview_set) and small ints, so moving
 * a packet or retrying allocates nothing.
 */
#ifndef OMV_RPC_MP_GLUE_TRANSPORT_BUS_H
#define OMV_RPC_MP_GLUE_TRANSPORT_BUS_H

#include "rpc_glue.h"

/* A bound method as mp_load_method leaves it: fun, and self (MP_OBJ_NULL for a plain
 * function). Kept inside a transport object, so the garbage collector keeps both alive. */
typedef struct rpc_bus_method {
    mp_obj_t fun;
    mp_obj_t self;
} rpc_bus_method_t;

/* Most positional plus keyword arguments (counted twice: name and value) of one call. */
#define RPC_BUS_MAX_ARGS 8

/* obj.attr as a bound method; raises AttributeError naming it when obj has no such attr. */
void rpc_bus_method_load(rpc_bus_method_t *m, mp_obj_t obj, qstr attr);

/* Calls m(args[0..n_args), kw args[n_args..n_args + 2 * n_kw) as name/value pairs).
 * Returns the result, or MP_OBJ_NULL when the bus raised OSError (a NACK, a HAL timeout):
 * that is a failed transfer, not the user's business; its errno goes to *err when err is
 * not NULL. Any other exception (KeyboardInterrupt, a bad argument) propagates. */
mp_obj_t rpc_bus_call(const rpc_bus_method_t *m, size_t n_args, size_t n_kw, const mp_obj_t *args,
    int *err);

/* The errno of a bus's timeout (MicroPython's MP_ETIMEDOUT, the same on every port). */
#define RPC_BUS_ETIMEDOUT 110

/* `import module`, or MP_OBJ_NULL when the port has no such module. */
mp_obj_t rpc_bus_import(qstr module);
/* obj.attr, or MP_OBJ_NULL when obj is MP_OBJ_NULL or has no such attribute. */
mp_obj_t rpc_bus_attr(mp_obj_t obj, qstr attr);

/* Raised at construction when the port lacks what a transport needs. */
NORETURN void rpc_bus_missing(const char *what);

/* Microsecond delays (the 100 us lead time before an I2C or SPI transfer). The native
 * module calls time.sleep_us (looked up once into *sleep_us by rpc_bus_delay_init). */
void rpc_bus_delay_init(mp_obj_t *sleep_us);
void rpc_bus_delay_us(mp_obj_t sleep_us, uint32_t us);

/* The short timeouts on these buses are the reference's (3 ms master, 2 ms slave) times
 * this. An I2C or SPI slave hears the master only while it is inside a call, so a peer that
 * reacts later than the reference's timeouts assume (a Python callback, a garbage
 * collection, a loaded host, a board behind a simulator) makes the slave give up a phase
 * the master is still in; both then fail attempt after attempt until the phase timeout.
 * Longer waits cost nothing when packets come on time, and reference peers still work: each
 * side resynchronises at its own attempts. On the simulated buses (tests/bus) with a loaded
 * host (peers stalled for tens of ms), x4 still lost up to 5 calls in 500 in some runs;
 * x10 (what the network transport uses for the same reason) gives more margin. */
#define RPC_BUS_SHORT_TIMEOUT_SCALE OMV_RPC_BUS_SHORT_TIMEOUT_SCALE

/* How long an I2C or SPI master keeps trying a transfer the slave was not ready for (a NACK,
 * or a read of all-equal bytes): a slave that is a little late gets in within this; one
 * that is waiting for something else (it gave up the phase while this master was held up)
 * never will, and the engine's next attempt, which starts the phase again, is what brings
 * both back in step. Stream packets wait for the peer's callback: they get their whole
 * timeout. */
#define RPC_BUS_NOT_READY_MS (3 * RPC_BUS_SHORT_TIMEOUT_SCALE)
static inline uint32_t rpc_bus_retry_window(uint32_t packet, uint32_t timeout_ms) {
    if (rpc_packet_is_stream(packet) || timeout_ms < RPC_BUS_NOT_READY_MS) {
        return timeout_ms;
    }
    return RPC_BUS_NOT_READY_MS;
}

/* True when the packet kind starts with a magic (so a read of all-equal bytes cannot be it:
 * no magic has two equal bytes). Raw stream frames and ack bytes may be all equal. */
static inline bool rpc_bus_packet_has_magic(uint32_t packet) {
    return OMV_RPC_PACKET_MAGIC(packet) != 0;
}

/* True when buf[0, len) holds one byte value (len >= 1): an I2C/SPI slave that was not
 * inside a send call (SDA/MISO released reads 0xFF, or a stuck line reads 0x00). */
static inline bool rpc_bus_all_equal(const uint8_t *buf, size_t len) {
    for (size_t i = 1; i < len; i++) {
        if (buf[i] != buf[0]) {
            return false;
        }
    }
    return len > 0;
}

/* Milliseconds that n bytes take on a bus moving bits_per_byte bits per byte at bit_rate,
 * rounded up: the transports stretch their HAL timeouts by this much so that a long data
 * packet on a slow bus (64 KiB on 100 kHz I2C takes 5.9 s) is not cut off by the 5 s long
 * timeout that the reference assumes for fast links. */
static inline uint32_t rpc_bus_wire_ms(size_t n, uint32_t bits_per_byte, uint32_t bit_rate) {
    if (bit_rate == 0) {
        return 0;
    }
    uint64_t bits = (uint64_t)n * bits_per_byte;
    return (uint32_t)((bits * 1000 + bit_rate - 1) / bit_rate);
}

/* The constructors, exported by module _rpc (rpc_transports.h) and used by frozen/rpc_bus.py:
 *   i2c_master_transport(slave_addr, rate, i2c_bus)
 *   i2c_slave_transport(slave_addr, i2c_bus)
 *   spi_master_transport(cs_pin, freq, clk_polarity, clk_phase, spi_bus)
 *   spi_slave_transport(cs_pin, clk_polarity, clk_phase, spi_bus)
 *   can_transport(message_id, bit_rate, sample_point, can_bus)   (master and slave alike) */
extern const mp_obj_fun_builtin_fixed_t rpc_i2c_master_transport_obj;
extern const mp_obj_fun_builtin_fixed_t rpc_i2c_slave_transport_obj;
extern const mp_obj_fun_builtin_var_t rpc_spi_master_transport_obj;
extern const mp_obj_fun_builtin_var_t rpc_spi_slave_transport_obj;
extern const mp_obj_fun_builtin_var_t rpc_can_transport_obj;

#define RPC_BUS_TRANSPORT_GLOBALS(X) \
    X(MP_QSTR_i2c_master_transport, rpc_i2c_master_transport_obj) \
    X(MP_QSTR_i2c_slave_transport, rpc_i2c_slave_transport_obj) \
    X(MP_QSTR_spi_master_transport, rpc_spi_master_transport_obj) \
    X(MP_QSTR_spi_slave_transport, rpc_spi_slave_transport_obj) \
    X(MP_QSTR_can_transport, rpc_can_transport_obj)

#endif /* OMV_RPC_MP_GLUE_TRANSPORT_BUS_H */
