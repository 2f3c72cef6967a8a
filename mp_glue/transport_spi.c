/*
 * transport_spi.c: the SPI transports (docs/PROTOCOL.md, Transports: SPI).
 *
 * Master: machine.SPI and machine.Pin when the port has them, else pyb.SPI and pyb.Pin.
 * Each packet is one transfer: CS low, 100 us for the slave, full duplex, CS high. A read
 * whose bytes are all equal comes from a slave that was not inside its send call (MISO
 * idles high): nothing was taken from it, so the master clocks the packet again for a short
 * while (rpc_bus_retry_window). Such a read also says that this slave needs more than
 * 100 us to get into its next call: the lead time then doubles (up to 2 ms) and shrinks
 * back by 1/8 with every good read. A slave that does not hear a transfer loses it silently, so the lead
 * time is what keeps a slow peer in step; a fast peer keeps the reference's 100 us.
 * Slave: pyb.SPI in slave mode (machine.SPI has no slave mode). It arms its receive/send as
 * soon as the engine asks for the packet, bounded by the packet's timeout, instead of
 * polling CS first as the reference does: a slave that waits to see CS low before arming
 * misses every transfer whose clock starts within its reaction time (the 100 us lead), the
 * reference's "works one call in ten". CS still frames the transfer on the wire.
 * A slave that gets into its send call while the master is already clocking shifts out its
 * packet late: the master reads 0xFF bytes and then the packet's start, and the slave's
 * call still holds the packet's end. The master recognises the packet's magic after the
 * 0xFF run, keeps what it has and clocks the missing bytes in a second transfer, which
 * completes the slave's call too: both stay in step instead of failing the phase.
 * The HAL moves at most 65535 bytes per call: longer packets go in 65535-byte pieces under
 * one CS low, 1 ms apart, on both sides.
 * A slave send spans transfers the same way when the master is not ours: a reference-like
 * master (no realignment) reads 0xFF then the packet's start, fails that attempt and writes
 * its next request, whose bytes complete the slave's send call. The call ends OK although the
 * master never read the packet: after RESULT_DATA the slave ends its turn and the master's
 * call is lost. So the slave sends full duplex and looks at what the master clocked in: a
 * master reading clocks one constant byte (machine.SPI.readinto, pyb.SPI.recv into a new
 * buffer, our master), so any other byte is a master's packet and the send failed (the
 * engine tries the phase again, as the master does). Packets of up to
 * RPC_SPI_SEND_CHECK_MAX bytes are checked (all headers, acks and small data packets);
 * longer ones are sent blind.
 */
#include "transport_bus.h"

#define RPC_SPI_MAX_TRANSFER 65535u
#define RPC_SPI_LEAD_US 100u
#define RPC_SPI_MAX_LEAD_US 2000u
/* A longer lead where the slave is switching calls right then: every stream packet (a frame
 * follows its header at once, an ack follows the reader's callback at once, a header follows
 * the ack at once: with 100 us, a reader slave on a loaded host missed the header after its
 * ack and ended the stream), and the second and later 65535-byte pieces of a packet, which
 * follow the slave's previous call. A stream frame has no crc: a slave that gets into its
 * call late does not make the packet fail, it hands over (or takes) a frame's tail as a
 * frame. SPI has no flow control: a peer later than this still ends a stream early. */
#define RPC_SPI_SWITCH_LEAD_US 1000u
#define RPC_SPI_BITS_PER_BYTE 8u
/* The slave does not know the master's clock: it assumes the documented default. */
#define RPC_SPI_SLAVE_ASSUMED_FREQ 1000000u

/* The longest slave send whose clocked-in bytes are checked (the check buffer's size). */
#define RPC_SPI_SEND_CHECK_MAX 2048u

#define RPC_SPI_MACHINE 0u     /* machine.SPI: write(buf), readinto(buf) */
#define RPC_SPI_PYB 1u         /* pyb.SPI master or slave: send(buf, timeout=), recv(buf, timeout=) */

typedef struct rpc_spi_transport {
    rpc_transport_t base;
    mp_obj_t bus;
    mp_obj_t cs;
    rpc_bus_method_t write;
    rpc_bus_method_t read;
    rpc_bus_method_t cs_value;  /* master: cs.value(0 / 1) */
    rpc_bus_method_t send_recv; /* slave: send_recv(send, recv, timeout=) */
    mp_obj_t view;
    mp_obj_t clocked_view;      /* slave: on clocked_in, for send_recv */
    mp_obj_t sleep_us;
    uint32_t api;
    uint32_t freq;
    uint32_t lead_us;           /* master: time between CS low and the clock */
    bool master;
    /* Slave only (last: a master's struct ends before it): what the master clocked in. */
    uint8_t clocked_in[RPC_SPI_SEND_CHECK_MAX];
} rpc_spi_transport_t;

static void rpc_spi_cs(rpc_spi_transport_t *t, int level) {
    mp_obj_t arg = MP_OBJ_NEW_SMALL_INT(level);
    int err;
    rpc_bus_call(&t->cs_value, 1, 0, &arg, &err);
}

/* One packet: the master frames it with CS; both sides move it in <= 65535-byte pieces. */
static bool rpc_spi_transfer(rpc_spi_transport_t *t, uint8_t *buf, size_t len, bool write,
    uint32_t timeout_ms, uint32_t lead_us) {
    bool ok = true;
    size_t offset = 0;
    if (t->master) {
        rpc_spi_cs(t, 0);
    }
    while (ok && offset < len) {
        size_t chunk = len - offset < RPC_SPI_MAX_TRANSFER ? len - offset : RPC_SPI_MAX_TRANSFER;
        if (t->master) {
            rpc_bus_delay_us(t->sleep_us,
                offset > 0 && lead_us < RPC_SPI_SWITCH_LEAD_US ? RPC_SPI_SWITCH_LEAD_US : lead_us);
        }
        rpc_memoryview_set(t->view, buf, offset, chunk, !write);
        const rpc_bus_method_t *method = write ? &t->write : &t->read;
        mp_obj_t ret;
        int err;
        if (t->api == RPC_SPI_MACHINE) {
            ret = rpc_bus_call(method, 1, 0, &t->view, &err);
        } else if (!t->master && write && len <= RPC_SPI_SEND_CHECK_MAX) {
            rpc_memoryview_set(t->clocked_view, t->clocked_in, 0, chunk, true);
            mp_obj_t args[4] = { t->view, t->clocked_view, MP_OBJ_NEW_QSTR(MP_QSTR_timeout), MP_OBJ_NEW_SMALL_INT(timeout_ms) };
            ret = rpc_bus_call(&t->send_recv, 2, 1, args, &err);
            rpc_memoryview_set(t->clocked_view, NULL, 0, 0, false);
            if (ret != MP_OBJ_NULL && !rpc_bus_all_equal(t->clocked_in, chunk)) {
                ret = MP_OBJ_NULL; /* a master's packet came in: it was not reading this one */
            }
        } else {
            mp_obj_t args[3] = { t->view, MP_OBJ_NEW_QSTR(MP_QSTR_timeout), MP_OBJ_NEW_SMALL_INT(timeout_ms) };
            ret = rpc_bus_call(method, 1, 1, args, &err);
        }
        rpc_memoryview_set(t->view, NULL, 0, 0, false);
        ok = ret != MP_OBJ_NULL;
        offset += chunk;
    }
    if (t->master) {
        rpc_spi_cs(t, 1);
    }
    return ok;
}

static uint32_t rpc_spi_lead(rpc_spi_transport_t *t, uint32_t packet) {
    return rpc_packet_is_stream(packet) && t->lead_us < RPC_SPI_SWITCH_LEAD_US ? RPC_SPI_SWITCH_LEAD_US : t->lead_us;
}

static int rpc_spi_flush(rpc_transport_t *self) {
    /* SPI buffers nothing: there is no pending input to drop. */
    (void)self;
    return OMV_RPC_IO_OK;
}

static uint32_t rpc_spi_budget(rpc_spi_transport_t *t, size_t len, uint32_t timeout_ms) {
    uint32_t budget = timeout_ms + rpc_bus_wire_ms(len, RPC_SPI_BITS_PER_BYTE, t->freq);
    return budget > 0 ? budget : 1;
}

static int rpc_spi_send(rpc_transport_t *self, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    rpc_spi_transport_t *t = (rpc_spi_transport_t *)self;
    /* The master cannot tell whether the slave heard: one transfer, as on the wire. */
    if (!rpc_spi_transfer(t, (uint8_t *)data, len, true, rpc_spi_budget(t, len, timeout_ms),
        rpc_spi_lead(t, packet))) {
        return OMV_RPC_IO_TIMEOUT;
    }
    *done = len;
    return OMV_RPC_IO_OK;
}

/* The magic a received packet of this kind starts with, or 0 (raw stream bytes). */
static uint16_t rpc_spi_expected_magic(uint32_t packet) {
    return OMV_RPC_PACKET_MAGIC(packet);
}

/* Master: a read that starts with 0xFF bytes and then the expected magic caught a slave that
 * started sending late. Move the packet's start to the front and clock its end. */
static void rpc_spi_realign(rpc_spi_transport_t *t, uint8_t *buf, size_t len, uint32_t packet,
    uint32_t timeout_ms) {
    uint16_t magic = rpc_spi_expected_magic(packet);
    if (magic == 0 || len < 2 || (buf[0] | buf[1] << 8) == magic) {
        return;
    }
    size_t late = 0;
    while (late < len && buf[late] == 0xFF) {
        late++;
    }
    if (late == 0 || late >= len || buf[late] != (magic & 0xFF)
        || (late + 1 < len && buf[late + 1] != (magic >> 8))) {
        return;
    }
    memmove(buf, buf + late, len - late);
    rpc_spi_transfer(t, buf + len - late, late, false, timeout_ms, t->lead_us);
}

static int rpc_spi_recv(rpc_transport_t *self, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    rpc_spi_transport_t *t = (rpc_spi_transport_t *)self;
    uint32_t start = rpc_ticks_ms();
    uint32_t budget = rpc_spi_budget(t, len, timeout_ms);
    /* The slave waits for the master's clock as long as the packet allows; the master polls a
     * slave that is not ready only for a short while. */
    uint32_t window = t->master ? rpc_bus_retry_window(packet, timeout_ms) : budget;
    for (;;) {
        uint32_t left = rpc_time_left(start, budget);
        if (!rpc_spi_transfer(t, buf, len, false, left > 0 ? left : 1, rpc_spi_lead(t, packet))) {
            return OMV_RPC_IO_TIMEOUT;
        }
        /* All-equal bytes cannot be a packet (no magic has two equal bytes). On the master
         * they are a slave that was not in its send call yet; on the slave they are the
         * master's clocks for a read of its own (the slave missed a packet and is behind):
         * neither took anything from the other side, so the transfer is simply repeated. */
        if (!rpc_bus_packet_has_magic(packet) || !rpc_bus_all_equal(buf, len)) {
            if (t->master) {
                rpc_spi_realign(t, buf, len, packet, left > 0 ? left : 1);
                t->lead_us -= (t->lead_us - RPC_SPI_LEAD_US) / 8;
            }
            *done = len;
            return OMV_RPC_IO_OK;
        }
        if (t->master) {
            t->lead_us = t->lead_us * 2 < RPC_SPI_MAX_LEAD_US ? t->lead_us * 2 : RPC_SPI_MAX_LEAD_US;
        }
        if (rpc_time_left(start, window) == 0) {
            return OMV_RPC_IO_TIMEOUT;
        }
    }
}

static const rpc_transport_ops_t rpc_spi_ops = {
    .flush = rpc_spi_flush,
    .send = rpc_spi_send,
    .recv = rpc_spi_recv,
    .max_queue_depth = 1,
    .short_timeout_scale = RPC_BUS_SHORT_TIMEOUT_SCALE,
    .whole_packets = true,
};

static rpc_spi_transport_t *rpc_spi_new(bool master) {
    /* Only a slave has the check buffer. */
    size_t size = master ? offsetof(rpc_spi_transport_t, clocked_in) : sizeof(rpc_spi_transport_t);
    rpc_spi_transport_t *t = (rpc_spi_transport_t *)rpc_transport_new(size, &rpc_spi_ops);
    t->master = master;
    t->view = rpc_memoryview_new(NULL, 0, 0, false);
    t->clocked_view = rpc_memoryview_new(NULL, 0, 0, true);
    rpc_bus_delay_init(&t->sleep_us);
    return t;
}

/* spi_master_transport(cs_pin, freq, clk_polarity, clk_phase, spi_bus) */
static mp_obj_t rpc_spi_master_transport(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_obj_t cs_pin = args[0], freq = args[1], polarity = args[2], phase = args[3], spi_bus = args[4];
    mp_int_t hz = mp_obj_get_int(freq);
    if (hz <= 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("freq must be positive"));
    }
    rpc_spi_transport_t *t = rpc_spi_new(true);
    t->freq = (uint32_t)hz;
    t->base.bytes_per_s = t->freq / RPC_SPI_BITS_PER_BYTE;
    t->lead_us = RPC_SPI_LEAD_US;
    mp_obj_t machine = rpc_bus_import(MP_QSTR_machine);
    mp_obj_t spi = rpc_bus_attr(machine, MP_QSTR_SPI);
    mp_obj_t pin = rpc_bus_attr(machine, MP_QSTR_Pin);
    mp_obj_t pin_out = rpc_bus_attr(pin, MP_QSTR_OUT);
    if (spi != MP_OBJ_NULL && pin_out != MP_OBJ_NULL) {
        mp_obj_t spi_args[7] = { spi_bus, MP_OBJ_NEW_QSTR(MP_QSTR_baudrate), freq,
                                 MP_OBJ_NEW_QSTR(MP_QSTR_polarity), polarity,
                                 MP_OBJ_NEW_QSTR(MP_QSTR_phase), phase };
        t->bus = mp_call_function_n_kw(spi, 1, 3, spi_args);
        t->api = RPC_SPI_MACHINE;
        rpc_bus_method_load(&t->write, t->bus, MP_QSTR_write);
        rpc_bus_method_load(&t->read, t->bus, MP_QSTR_readinto);
    } else {
        mp_obj_t pyb = rpc_bus_import(MP_QSTR_pyb);
        spi = rpc_bus_attr(pyb, MP_QSTR_SPI);
        mp_obj_t master = rpc_bus_attr(spi, MP_QSTR_MASTER);
        pin = rpc_bus_attr(pyb, MP_QSTR_Pin);
        pin_out = rpc_bus_attr(pin, MP_QSTR_OUT_PP);
        if (master == MP_OBJ_NULL || pin_out == MP_OBJ_NULL) {
            rpc_bus_missing("rpc_spi_master needs machine.SPI and machine.Pin, or pyb.SPI and pyb.Pin; this port has neither");
        }
        mp_obj_t spi_args[8] = { spi_bus, master, MP_OBJ_NEW_QSTR(MP_QSTR_baudrate), freq,
                                 MP_OBJ_NEW_QSTR(MP_QSTR_polarity), polarity,
                                 MP_OBJ_NEW_QSTR(MP_QSTR_phase), phase };
        t->bus = mp_call_function_n_kw(spi, 2, 3, spi_args);
        t->api = RPC_SPI_PYB;
        rpc_bus_method_load(&t->write, t->bus, MP_QSTR_send);
        rpc_bus_method_load(&t->read, t->bus, MP_QSTR_recv);
    }
    mp_obj_t pin_args[4] = { cs_pin, pin_out, MP_OBJ_NEW_QSTR(MP_QSTR_value), MP_OBJ_NEW_SMALL_INT(1) };
    t->cs = mp_call_function_n_kw(pin, 2, 1, pin_args);
    rpc_bus_method_load(&t->cs_value, t->cs, MP_QSTR_value);
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_spi_master_transport_obj, 5, 5, rpc_spi_master_transport);

/* spi_slave_transport(cs_pin, clk_polarity, clk_phase, spi_bus) */
static mp_obj_t rpc_spi_slave_transport(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_obj_t cs_pin = args[0], polarity = args[1], phase = args[2], spi_bus = args[3];
    rpc_spi_transport_t *t = rpc_spi_new(false);
    t->freq = RPC_SPI_SLAVE_ASSUMED_FREQ;
    t->base.bytes_per_s = t->freq / RPC_SPI_BITS_PER_BYTE;
    mp_obj_t pyb = rpc_bus_import(MP_QSTR_pyb);
    mp_obj_t spi = rpc_bus_attr(pyb, MP_QSTR_SPI);
    mp_obj_t slave = rpc_bus_attr(spi, MP_QSTR_SLAVE);
    mp_obj_t pin = rpc_bus_attr(pyb, MP_QSTR_Pin);
    mp_obj_t pin_in = rpc_bus_attr(pin, MP_QSTR_IN);
    if (slave == MP_OBJ_NULL || pin_in == MP_OBJ_NULL) {
        rpc_bus_missing("rpc_spi_slave needs pyb.SPI (its slave mode) and pyb.Pin; this port has no pyb.SPI");
    }
    mp_obj_t spi_args[6] = { spi_bus, slave, MP_OBJ_NEW_QSTR(MP_QSTR_polarity), polarity,
                             MP_OBJ_NEW_QSTR(MP_QSTR_phase), phase };
    t->bus = mp_call_function_n_kw(spi, 2, 2, spi_args);
    t->api = RPC_SPI_PYB;
    rpc_bus_method_load(&t->write, t->bus, MP_QSTR_send);
    rpc_bus_method_load(&t->read, t->bus, MP_QSTR_recv);
    rpc_bus_method_load(&t->send_recv, t->bus, MP_QSTR_send_recv);
    /* The chip select is an input here: claimed so that the pin name is checked now. */
    mp_obj_t pin_args[2] = { cs_pin, pin_in };
    t->cs = mp_call_function_n_kw(pin, 2, 0, pin_args);
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_spi_slave_transport_obj, 4, 4, rpc_spi_slave_transport);
