/*
 * transport_i2c.c: the I2C transports (docs/PROTOCOL.md, Transports: I2C).
 *
 * Master: machine.I2C when the port has it, else pyb.I2C in master mode. Every transfer moves
 * at most 65535 bytes and is preceded by 100 us (the reference slave needs that time to get
 * into its next receive/send call). A transfer the slave does not acknowledge, or a read
 * whose bytes are all equal (a slave not inside its send call leaves SDA released), means
 * "slave not ready": the master tries again for a short while (rpc_bus_retry_window), where
 * the reference sleeps a short timeout and fails the attempt.
 * Slave: pyb.I2C in slave mode (machine has no I2C target mode on the ports we know), one
 * transfer at a time, each bounded by the packet's timeout.
 * Both stretch the timeout by the packet's wire time at the bus rate: 64 KiB at 100 kHz
 * takes 5.9 s, more than the 5 s long timeout.
 */
#include "transport_bus.h"

#define RPC_I2C_MAX_TRANSFER 65535u
#define RPC_I2C_LEAD_US 100u
/* 8 data bits and the ACK. */
#define RPC_I2C_BITS_PER_BYTE 9u
/* The slave does not know the master's clock: it assumes the documented default rate. */
#define RPC_I2C_SLAVE_ASSUMED_RATE 100000u

/* Which bus API the transport drives. */
#define RPC_I2C_MACHINE 0u     /* machine.I2C: writeto(addr, buf) -> acks, readfrom_into(addr, buf) */
#define RPC_I2C_PYB_MASTER 1u  /* pyb.I2C master: send(buf, addr, timeout=), recv(buf, addr, timeout=) */
#define RPC_I2C_PYB_SLAVE 2u   /* pyb.I2C slave: send(buf, timeout=), recv(buf, timeout=) */

typedef struct rpc_i2c_transport {
    rpc_transport_t base;
    mp_obj_t bus;
    rpc_bus_method_t write;
    rpc_bus_method_t read;
    rpc_bus_method_t init;   /* pyb slave: init(SLAVE, addr=...), to reset after an error */
    mp_obj_t slave_mode;     /* pyb.I2C.SLAVE */
    mp_obj_t view;           /* repointed at each transfer's bytes */
    mp_obj_t sleep_us;
    uint32_t api;
    uint32_t addr;
    uint32_t rate;
} rpc_i2c_transport_t;

/* One transfer of buf[offset, offset + len) (len <= 65535); false when the slave did not
 * take (or give) all of it. */
static bool rpc_i2c_move(rpc_i2c_transport_t *t, uint8_t *buf, size_t offset, size_t len, bool write,
    uint32_t timeout_ms, int *err) {
    *err = 0;
    rpc_memoryview_set(t->view, buf, offset, len, !write);
    const rpc_bus_method_t *method = write ? &t->write : &t->read;
    mp_obj_t ret;
    if (t->api == RPC_I2C_MACHINE) {
        rpc_bus_delay_us(t->sleep_us, RPC_I2C_LEAD_US);
        mp_obj_t args[2] = { MP_OBJ_NEW_SMALL_INT(t->addr), t->view };
        ret = rpc_bus_call(method, 2, 0, args, err);
        /* writeto returns how many bytes were acknowledged: fewer is a NACK mid-packet. */
        if (write && ret != MP_OBJ_NULL && mp_obj_is_small_int(ret)
            && (size_t)MP_OBJ_SMALL_INT_VALUE(ret) != len) {
            ret = MP_OBJ_NULL;
        }
    } else if (t->api == RPC_I2C_PYB_MASTER) {
        rpc_bus_delay_us(t->sleep_us, RPC_I2C_LEAD_US);
        mp_obj_t args[4] = { t->view, MP_OBJ_NEW_SMALL_INT(t->addr),
                             MP_OBJ_NEW_QSTR(MP_QSTR_timeout), MP_OBJ_NEW_SMALL_INT(timeout_ms) };
        ret = rpc_bus_call(method, 2, 1, args, err);
    } else {
        mp_obj_t args[3] = { t->view, MP_OBJ_NEW_QSTR(MP_QSTR_timeout), MP_OBJ_NEW_SMALL_INT(timeout_ms) };
        ret = rpc_bus_call(method, 1, 1, args, err);
    }
    rpc_memoryview_set(t->view, NULL, 0, 0, false);
    return ret != MP_OBJ_NULL;
}

static size_t rpc_i2c_chunk(size_t len, size_t offset) {
    return len - offset < RPC_I2C_MAX_TRANSFER ? len - offset : RPC_I2C_MAX_TRANSFER;
}

/* Master, after a write the slave refused: a slave inside a send call acknowledges no write.
 * That send is its answer to an earlier attempt, armed after this master stopped reading it
 * (a slave descheduled past the master's not-ready window): it would refuse every write of
 * this master's next attempts until it timed out (RESULT_DATA: the 5 s long timeout) while
 * this master never reads, and the call and the next ones were lost. A one-byte read ends
 * such a send (the slave's transfer fails and it tries its phase again); a slave in no call
 * does not acknowledge it. The protocol never has the slave send while the master writes,
 * so no send that the master still wants is cut. */
static void rpc_i2c_end_slave_send(rpc_i2c_transport_t *t) {
    uint8_t byte;
    int err;
    rpc_i2c_move(t, &byte, 0, 1, false, RPC_BUS_NOT_READY_MS, &err);
}

/* Master: the packet in <= 65535-byte transfers. A transfer the slave was not ready for (a
 * NACK; on the first transfer of a packet with a magic, a read of all-equal bytes) took
 * nothing from it and is tried again within the window; for a later transfer the slave is
 * only getting into its next receive/send call. */
static int rpc_i2c_master_move(rpc_i2c_transport_t *t, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet, bool write) {
    uint32_t budget = timeout_ms + rpc_bus_wire_ms(len, RPC_I2C_BITS_PER_BYTE, t->rate);
    uint32_t window = rpc_bus_retry_window(packet, timeout_ms);
    size_t offset = 0;
    while (offset < len) {
        size_t chunk = rpc_i2c_chunk(len, offset);
        uint32_t start = rpc_ticks_ms();
        for (;;) {
            int err;
            if (rpc_i2c_move(t, buf, offset, chunk, write, budget, &err)
                && (write || offset > 0 || !rpc_bus_packet_has_magic(packet)
                    || !rpc_bus_all_equal(buf, chunk))) {
                break;
            }
            if (write && offset == 0) {
                rpc_i2c_end_slave_send(t);
            }
            if (rpc_time_left(start, window) == 0) {
                return OMV_RPC_IO_TIMEOUT;
            }
        }
        offset += chunk;
    }
    *done = len;
    return OMV_RPC_IO_OK;
}

static int rpc_i2c_flush(rpc_transport_t *self) {
    /* I2C buffers nothing: there is no pending input to drop. */
    (void)self;
    return OMV_RPC_IO_OK;
}

static int rpc_i2c_master_send(rpc_transport_t *self, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    return rpc_i2c_master_move((rpc_i2c_transport_t *)self, (uint8_t *)data, len, done, timeout_ms, packet, true);
}

static int rpc_i2c_master_recv(rpc_transport_t *self, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    return rpc_i2c_master_move((rpc_i2c_transport_t *)self, buf, len, done, timeout_ms, packet, false);
}

/* After a failed slave transfer other than a plain timeout, put the peripheral back into
 * slave mode (releasing a line it may hold, as the reference does before every transfer). */
static void rpc_i2c_slave_reset(rpc_i2c_transport_t *t, int err) {
    if (err != RPC_BUS_ETIMEDOUT) {
        mp_obj_t args[3] = { t->slave_mode, MP_OBJ_NEW_QSTR(MP_QSTR_addr), MP_OBJ_NEW_SMALL_INT(t->addr) };
        rpc_bus_call(&t->init, 1, 1, args, NULL);
    }
}

static int rpc_i2c_slave_move(rpc_transport_t *self, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, bool write) {
    rpc_i2c_transport_t *t = (rpc_i2c_transport_t *)self;
    uint32_t start = rpc_ticks_ms();
    uint32_t budget = timeout_ms + rpc_bus_wire_ms(len, RPC_I2C_BITS_PER_BYTE, t->rate);
    for (size_t offset = 0; offset < len; offset += rpc_i2c_chunk(len, offset)) {
        uint32_t left = rpc_time_left(start, budget);
        int err;
        if (!rpc_i2c_move(t, buf, offset, rpc_i2c_chunk(len, offset), write, left > 0 ? left : 1, &err)) {
            rpc_i2c_slave_reset(t, err);
            return OMV_RPC_IO_TIMEOUT;
        }
    }
    *done = len;
    return OMV_RPC_IO_OK;
}

static int rpc_i2c_slave_send(rpc_transport_t *self, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    return rpc_i2c_slave_move(self, (uint8_t *)data, len, done, timeout_ms, true);
}

static int rpc_i2c_slave_recv(rpc_transport_t *self, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    return rpc_i2c_slave_move(self, buf, len, done, timeout_ms, false);
}

static const rpc_transport_ops_t rpc_i2c_master_ops = {
    .flush = rpc_i2c_flush,
    .send = rpc_i2c_master_send,
    .recv = rpc_i2c_master_recv,
    .max_queue_depth = 1,
    .short_timeout_scale = RPC_BUS_SHORT_TIMEOUT_SCALE,
    .whole_packets = true,
};

static const rpc_transport_ops_t rpc_i2c_slave_ops = {
    .flush = rpc_i2c_flush,
    .send = rpc_i2c_slave_send,
    .recv = rpc_i2c_slave_recv,
    .max_queue_depth = 1,
    .short_timeout_scale = RPC_BUS_SHORT_TIMEOUT_SCALE,
    .whole_packets = true,
};

static rpc_i2c_transport_t *rpc_i2c_new(const rpc_transport_ops_t *ops, mp_obj_t slave_addr) {
    mp_int_t addr = mp_obj_get_int(slave_addr);
    if (addr < 0 || addr > 0x7F) {
        mp_raise_ValueError(MP_ERROR_TEXT("slave_addr must be a 7-bit address"));
    }
    rpc_i2c_transport_t *t = (rpc_i2c_transport_t *)rpc_transport_new(sizeof(rpc_i2c_transport_t), ops);
    t->addr = (uint32_t)addr;
    t->view = rpc_memoryview_new(NULL, 0, 0, false);
    rpc_bus_delay_init(&t->sleep_us);
    return t;
}

/* i2c_master_transport(slave_addr, rate, i2c_bus) */
static mp_obj_t rpc_i2c_master_transport(mp_obj_t slave_addr, mp_obj_t rate, mp_obj_t i2c_bus) {
    mp_int_t hz = mp_obj_get_int(rate);
    if (hz <= 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rate must be positive"));
    }
    rpc_i2c_transport_t *t = rpc_i2c_new(&rpc_i2c_master_ops, slave_addr);
    t->rate = (uint32_t)hz;
    t->base.bytes_per_s = t->rate / RPC_I2C_BITS_PER_BYTE;
    rpc_bus_method_t make = { MP_OBJ_NULL, MP_OBJ_NULL };
    make.fun = rpc_bus_attr(rpc_bus_import(MP_QSTR_machine), MP_QSTR_I2C);
    if (make.fun != MP_OBJ_NULL) {
        mp_obj_t args[3] = { i2c_bus, MP_OBJ_NEW_QSTR(MP_QSTR_freq), rate };
        t->bus = mp_call_function_n_kw(make.fun, 1, 1, args);
        t->api = RPC_I2C_MACHINE;
        rpc_bus_method_load(&t->write, t->bus, MP_QSTR_writeto);
        rpc_bus_method_load(&t->read, t->bus, MP_QSTR_readfrom_into);
    } else {
        make.fun = rpc_bus_attr(rpc_bus_import(MP_QSTR_pyb), MP_QSTR_I2C);
        mp_obj_t master = rpc_bus_attr(make.fun, MP_QSTR_MASTER);
        if (make.fun == MP_OBJ_NULL || master == MP_OBJ_NULL) {
            rpc_bus_missing("rpc_i2c_master needs machine.I2C or pyb.I2C; this port has neither");
        }
        mp_obj_t args[4] = { i2c_bus, master, MP_OBJ_NEW_QSTR(MP_QSTR_baudrate), rate };
        t->bus = mp_call_function_n_kw(make.fun, 2, 1, args);
        t->api = RPC_I2C_PYB_MASTER;
        rpc_bus_method_load(&t->write, t->bus, MP_QSTR_send);
        rpc_bus_method_load(&t->read, t->bus, MP_QSTR_recv);
    }
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_3(rpc_i2c_master_transport_obj, rpc_i2c_master_transport);

/* i2c_slave_transport(slave_addr, i2c_bus) */
static mp_obj_t rpc_i2c_slave_transport(mp_obj_t slave_addr, mp_obj_t i2c_bus) {
    rpc_i2c_transport_t *t = rpc_i2c_new(&rpc_i2c_slave_ops, slave_addr);
    t->rate = RPC_I2C_SLAVE_ASSUMED_RATE;
    t->base.bytes_per_s = t->rate / RPC_I2C_BITS_PER_BYTE;
    mp_obj_t make = rpc_bus_attr(rpc_bus_import(MP_QSTR_pyb), MP_QSTR_I2C);
    t->slave_mode = rpc_bus_attr(make, MP_QSTR_SLAVE);
    if (make == MP_OBJ_NULL || t->slave_mode == MP_OBJ_NULL) {
        rpc_bus_missing("rpc_i2c_slave needs pyb.I2C (its slave mode); this port has no pyb.I2C");
    }
    mp_obj_t args[4] = { i2c_bus, t->slave_mode, MP_OBJ_NEW_QSTR(MP_QSTR_addr), slave_addr };
    t->bus = mp_call_function_n_kw(make, 2, 1, args);
    t->api = RPC_I2C_PYB_SLAVE;
    rpc_bus_method_load(&t->write, t->bus, MP_QSTR_send);
    rpc_bus_method_load(&t->read, t->bus, MP_QSTR_recv);
    rpc_bus_method_load(&t->init, t->bus, MP_QSTR_init);
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_2(rpc_i2c_slave_transport_obj, rpc_i2c_slave_transport);
