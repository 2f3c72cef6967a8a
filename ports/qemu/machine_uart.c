// machine.UART for UARTs 1 to 4 of the virtual cam (UART0 is the REPL).
#include <string.h>

#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stream.h"

#include "cmsdk_uart.h"
#include "modmachine.h"

#define MACHINE_UART_FIRST (1)
#define MACHINE_UART_LAST (UART_COUNT - 1)
// How long a write waits for QEMU to take one byte, on top of the UART's timeout.
#define MACHINE_UART_TX_WAIT_MS (1000)

typedef struct _machine_uart_obj_t {
    mp_obj_base_t base;
    uint8_t id;
    uint32_t timeout;       // ms to wait for the first byte of a read
    uint32_t timeout_char;  // ms to wait for each further byte
} machine_uart_obj_t;

static machine_uart_obj_t machine_uart_obj[UART_COUNT];

void machine_uart_deinit_all(void) {
    for (unsigned id = MACHINE_UART_FIRST; id <= MACHINE_UART_LAST; ++id) {
        if (uart_is_enabled(id)) {
            uart_deinit(id);
        }
    }
}

static void machine_uart_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    (void)kind;
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (!uart_is_enabled(self->id)) {
        mp_printf(print, "UART(%u)", self->id);
        return;
    }
    mp_printf(print, "UART(%u, baudrate=%u, bits=8, parity=None, stop=1, timeout=%u, timeout_char=%u)",
        self->id, (unsigned)uart_baudrate(self->id), (unsigned)self->timeout, (unsigned)self->timeout_char);
}

static void machine_uart_init_helper(machine_uart_obj_t *self, size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_baudrate, ARG_bits, ARG_parity, ARG_stop, ARG_timeout, ARG_timeout_char };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_baudrate, MP_ARG_INT, {.u_int = 115200} },
        { MP_QSTR_bits, MP_ARG_INT, {.u_int = 8} },
        { MP_QSTR_parity, MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_stop, MP_ARG_INT, {.u_int = 1} },
        { MP_QSTR_timeout, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_timeout_char, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 0} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);

    mp_int_t baudrate = args[ARG_baudrate].u_int;
    if (baudrate <= 0 || baudrate > 25000000 / 16) {
        mp_raise_ValueError(MP_ERROR_TEXT("baudrate out of range"));
    }
    if (args[ARG_bits].u_int != 8 || args[ARG_parity].u_obj != mp_const_none || args[ARG_stop].u_int != 1) {
        mp_raise_ValueError(MP_ERROR_TEXT("only 8 bits, no parity, 1 stop bit"));
    }
    if (args[ARG_timeout].u_int < 0 || args[ARG_timeout_char].u_int < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("timeout must be >= 0"));
    }
    self->timeout = args[ARG_timeout].u_int;
    self->timeout_char = args[ARG_timeout_char].u_int;
    uart_init(self->id, baudrate);
}

static mp_obj_t machine_uart_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, MP_OBJ_FUN_ARGS_MAX, true);
    mp_int_t id = mp_obj_get_int(args[0]);
    if (id < MACHINE_UART_FIRST || id > MACHINE_UART_LAST) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("UART(%d) doesn't exist (1 to 4; UART0 is the REPL)"), (int)id);
    }
    machine_uart_obj_t *self = &machine_uart_obj[id];
    self->base.type = &machine_uart_type;
    self->id = id;
    if (n_args > 1 || n_kw > 0 || !uart_is_enabled(id)) {
        mp_map_t kw_args;
        mp_map_init_fixed_table(&kw_args, n_kw, args + n_args);
        machine_uart_init_helper(self, n_args - 1, args + 1, &kw_args);
    }
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t machine_uart_init(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    machine_uart_init_helper(MP_OBJ_TO_PTR(pos_args[0]), n_args - 1, pos_args + 1, kw_args);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(machine_uart_init_obj, 1, machine_uart_init);

static mp_obj_t machine_uart_deinit(mp_obj_t self_in) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    uart_deinit(self->id);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(machine_uart_deinit_obj, machine_uart_deinit);

static void machine_uart_check_enabled(machine_uart_obj_t *self) {
    if (!uart_is_enabled(self->id)) {
        mp_raise_OSError(MP_EBADF);
    }
}

static mp_obj_t machine_uart_any(mp_obj_t self_in) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    machine_uart_check_enabled(self);
    return MP_OBJ_NEW_SMALL_INT(uart_rx_any(self->id));
}
static MP_DEFINE_CONST_FUN_OBJ_1(machine_uart_any_obj, machine_uart_any);

static mp_obj_t machine_uart_txdone(mp_obj_t self_in) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    machine_uart_check_enabled(self);
    return mp_obj_new_bool(uart_tx_done(self->id));
}
static MP_DEFINE_CONST_FUN_OBJ_1(machine_uart_txdone_obj, machine_uart_txdone);

static const mp_rom_map_elem_t machine_uart_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_init), MP_ROM_PTR(&machine_uart_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_deinit), MP_ROM_PTR(&machine_uart_deinit_obj) },
    { MP_ROM_QSTR(MP_QSTR_any), MP_ROM_PTR(&machine_uart_any_obj) },
    { MP_ROM_QSTR(MP_QSTR_txdone), MP_ROM_PTR(&machine_uart_txdone_obj) },
    { MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&mp_stream_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_readinto), MP_ROM_PTR(&mp_stream_readinto_obj) },
    { MP_ROM_QSTR(MP_QSTR_readline), MP_ROM_PTR(&mp_stream_unbuffered_readline_obj) },
    { MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&mp_stream_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_flush), MP_ROM_PTR(&mp_stream_flush_obj) },
};
static MP_DEFINE_CONST_DICT(machine_uart_locals_dict, machine_uart_locals_dict_table);

// Whether wait_ms have passed since start: counted in microseconds (ticks_ms would cut a
// 2 ms wait short by up to 1 ms), in milliseconds for waits too long for the us counter.
static bool machine_uart_waited(uint32_t start_ms, uint32_t start_us, uint32_t wait_ms) {
    if (wait_ms >= 60000) {
        return mp_hal_ticks_ms() - start_ms >= wait_ms;
    }
    return mp_hal_ticks_us() - start_us >= wait_ms * 1000u;
}

// Reads wait up to `timeout` ms for the first byte and `timeout_char` ms for each next
// one; a read that got nothing is EAGAIN (read() returns None).
static mp_uint_t machine_uart_read(mp_obj_t self_in, void *buf_in, mp_uint_t size, int *errcode) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (!uart_is_enabled(self->id)) {
        *errcode = MP_EBADF;
        return MP_STREAM_ERROR;
    }
    if (size == 0) {
        return 0;
    }
    uint8_t *buf = buf_in;
    mp_uint_t got = 0;
    uint32_t wait_ms = self->timeout;
    uint32_t start_ms = mp_hal_ticks_ms();
    uint32_t start_us = mp_hal_ticks_us();
    for (;;) {
        size_t n = uart_rx_read(self->id, buf + got, size - got);
        if (n) {
            got += n;
            if (got == size) {
                return got;
            }
            wait_ms = self->timeout_char;
            start_ms = mp_hal_ticks_ms();
            start_us = mp_hal_ticks_us();
            continue;
        }
        if (machine_uart_waited(start_ms, start_us, wait_ms)) {
            break;
        }
        mp_event_wait_ms(1);
    }
    if (got == 0) {
        *errcode = MP_EAGAIN;
        return MP_STREAM_ERROR;
    }
    return got;
}

static mp_uint_t machine_uart_write(mp_obj_t self_in, const void *buf, mp_uint_t size, int *errcode) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (!uart_is_enabled(self->id)) {
        *errcode = MP_EBADF;
        return MP_STREAM_ERROR;
    }
    size_t sent = uart_tx_write(self->id, buf, size, self->timeout + MACHINE_UART_TX_WAIT_MS);
    if (sent == 0 && size != 0) {
        *errcode = MP_EAGAIN;
        return MP_STREAM_ERROR;
    }
    return sent;
}

static mp_uint_t machine_uart_ioctl(mp_obj_t self_in, mp_uint_t request, uintptr_t arg, int *errcode) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    switch (request) {
        case MP_STREAM_POLL: {
            if (!uart_is_enabled(self->id)) {
                return MP_STREAM_POLL_NVAL;
            }
            mp_uint_t ret = 0;
            if ((arg & MP_STREAM_POLL_RD) && uart_rx_any(self->id)) {
                ret |= MP_STREAM_POLL_RD;
            }
            if ((arg & MP_STREAM_POLL_WR) && uart_tx_ready(self->id)) {
                ret |= MP_STREAM_POLL_WR;
            }
            return ret;
        }
        case MP_STREAM_FLUSH: {
            uint32_t start = mp_hal_ticks_ms();
            while (uart_is_enabled(self->id) && !uart_tx_done(self->id)) {
                if (mp_hal_ticks_ms() - start > self->timeout + MACHINE_UART_TX_WAIT_MS) {
                    *errcode = MP_ETIMEDOUT;
                    return MP_STREAM_ERROR;
                }
            }
            return 0;
        }
        case MP_STREAM_CLOSE:
            uart_deinit(self->id);
            return 0;
        default:
            *errcode = MP_EINVAL;
            return MP_STREAM_ERROR;
    }
}

static const mp_stream_p_t machine_uart_stream_p = {
    .read = machine_uart_read,
    .write = machine_uart_write,
    .ioctl = machine_uart_ioctl,
    .is_text = false,
};

MP_DEFINE_CONST_OBJ_TYPE(
    machine_uart_type,
    MP_QSTR_UART,
    MP_TYPE_FLAG_ITER_IS_STREAM,
    make_new, machine_uart_make_new,
    print, machine_uart_print,
    protocol, &machine_uart_stream_p,
    locals_dict, &machine_uart_locals_dict
    );
