// The cam side of OpenMV Protocol V2 (the IDE's link) for a MicroPython port: the device
// engine (include/omv_protocol_v2.h) on a UART of its own, the channels OpenMV's firmware
// registers (stdin: exec/stop/reset, stdout: what scripts print, stream: frames of a
// synthetic scene), and module `protocol` with OpenMV's API (init, register, send_event) so
// that its channel examples run unchanged.
//
// The port provides the UART (cmsdk_uart.h) and calls the board_*_hook functions below: a
// 1 ms tick (schedules the protocol task when there is something to do), the REPL's idle
// wait (where an uploaded script runs, as OpenMV's main loop runs it), stdout (teed into the
// stdout channel), and boot / soft reset.
#include <string.h>

#include "py/gc.h"
#include "py/lexer.h"
#include "py/compile.h"
#include "py/mphal.h"
#include "py/nlr.h"
#include "py/objstr.h"
#include "py/runtime.h"

#include "cmsdk_uart.h"
#include "omv_protocol_v2.h"

#define PROTO_UART (4)
#define PROTO_BAUDRATE (921600)
#define MAX_CHANNELS (32)
#define NAME_SIZE (14)
#define CH_STDIN (1)
#define CH_STDOUT (2)
#define CH_STREAM (3)
// Channel flags (omv_protocol_channel.h).
#define FLAG_READ (1 << 0)
#define FLAG_WRITE (1 << 1)
#define FLAG_EXEC (1 << 2)
#define FLAG_LOCK (1 << 3)
#define FLAG_STREAM (1 << 4)
#define FLAG_DYNAMIC (1 << 5)
#define FLAG_PHYSICAL (1 << 6)
// Events.
#define EVENT_CHANNEL_REGISTERED (0)
#define EVENT_SOFT_REBOOT (2)
// The firmware reads channels in pieces of at most this (omv_protocol.c, CHANNEL_READ).
#define READ_PIECE (512)
#define SCRIPT_SIZE (16384)
#define STDOUT_SIZE (4096)
// The stream: a grayscale frame behind OpenMV's 20-byte stream header.
#define FRAME_W (160)
#define FRAME_H (120)
#define FRAME_HEADER (20)
#define PIXFORMAT_GRAYSCALE (0x08020001u)

typedef struct {
    char name[NAME_SIZE];
    uint8_t flags;
    bool used;
} channel_t;

static channel_t channels[MAX_CHANNELS];
MP_REGISTER_ROOT_POINTER(mp_obj_t protocol_backends[32]);
MP_REGISTER_ROOT_POINTER(mp_obj_t protocol_handles[32]);

static volatile bool ready;          // set once MicroPython is up (boot hook)
static volatile bool task_queued;
static bool task_running;
static uint32_t lock_interval_ms = 10;
static uint32_t last_lock_ms;
static bool lock_ever;
static uint8_t pending_registered;   // CHANNEL_REGISTERED events still to send
static int8_t pending_stdin_event = -1;

// stdin: the uploaded script, run from the REPL's idle wait.
static char script[SCRIPT_SIZE];
static size_t script_len;
static volatile bool exec_pending;
static volatile bool script_running;

// stdout: a ring of what was printed, read (and consumed) by the host.
static uint8_t out_ring[STDOUT_SIZE];
static size_t out_head, out_len;

// stream
static bool stream_enabled;
static bool stream_locked;
static uint32_t frame_count;
static uint8_t frame[FRAME_HEADER + FRAME_W * FRAME_H];

// A CHANNEL_READ answer in progress.
static struct {
    bool active;
    uint8_t channel;
    uint32_t offset;
    uint32_t remaining;
} reading;
static uint8_t piece[READ_PIECE];

static void channel_set(int id, const char *name, uint8_t flags) {
    memset(&channels[id], 0, sizeof(channels[id]));
    strncpy(channels[id].name, name, NAME_SIZE - 1);
    channels[id].flags = flags;
    channels[id].used = true;
}

static void put_u32(uint8_t *b, uint32_t v) {
    memcpy(b, &v, 4);
}

static void engine_init(bool crc, bool seq, bool ack, bool events, uint32_t max_payload,
    uint32_t rtx_retries, uint32_t rtx_timeout_ms) {
    omvp_config_t cfg = {
        .crc = crc, .seq = seq, .ack = ack, .events = events,
        .max_payload = (uint16_t)max_payload,
        .rtx_retries = (uint16_t)rtx_retries,
        .rtx_timeout_ms = rtx_timeout_ms,
        // Protocol 1.0.2, bootloader 1.0.0, firmware 5.0.0 (OpenMV's omv_protocol.h).
        .version = {1, 0, 2, 1, 0, 0, 5, 0, 0},
    };
    omvp_init(&cfg);
}

// ---- Python backends (OpenMV's py_protocol.c delegates) ----

static bool backend_has(int id, qstr method) {
    mp_obj_t b = MP_STATE_VM(protocol_backends)[id];
    if (b == MP_OBJ_NULL) {
        return false;
    }
    mp_obj_t dest[2];
    mp_load_method_maybe(b, method, dest);
    return dest[0] != MP_OBJ_NULL;
}

// Calls backend.method(*args); MP_OBJ_NULL when it is missing or raised.
static mp_obj_t backend_call(int id, qstr method, size_t n_args, const mp_obj_t *args) {
    mp_obj_t b = MP_STATE_VM(protocol_backends)[id];
    if (b == MP_OBJ_NULL) {
        return MP_OBJ_NULL;
    }
    mp_obj_t dest[2 + 3];
    mp_load_method_maybe(b, method, dest);
    if (dest[0] == MP_OBJ_NULL) {
        return MP_OBJ_NULL;
    }
    for (size_t i = 0; i < n_args; i++) {
        dest[2 + i] = args[i];
    }
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t r = mp_call_method_n_kw(n_args, 0, dest);
        nlr_pop();
        return r;
    }
    return MP_OBJ_NULL;
}

static bool is_dynamic(int id) {
    return id > 0 && id < MAX_CHANNELS && channels[id].used && (channels[id].flags & FLAG_DYNAMIC);
}

// ---- the built-in channels ----

static void stdout_put(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out_ring[(out_head + out_len) % STDOUT_SIZE] = s[i];
        if (out_len < STDOUT_SIZE) {
            out_len++;
        } else {
            out_head = (out_head + 1) % STDOUT_SIZE;   // full: keep the newest
        }
    }
}

static size_t stdout_get(uint8_t *buf, size_t n) {
    n = MIN(n, out_len);
    for (size_t i = 0; i < n; i++) {
        buf[i] = out_ring[(out_head + i) % STDOUT_SIZE];
    }
    out_head = (out_head + n) % STDOUT_SIZE;
    out_len -= n;
    return n;
}

// The synthetic scene: a diagonal gradient, a bright square moving across it, and the frame
// number in the first pixels of the last row.
static void render_frame(void) {
    frame_count++;
    put_u32(frame + 0, FRAME_W);
    put_u32(frame + 4, FRAME_H);
    put_u32(frame + 8, PIXFORMAT_GRAYSCALE);
    put_u32(frame + 12, 1);
    put_u32(frame + 16, FRAME_HEADER);
    uint8_t *p = frame + FRAME_HEADER;
    int sx = (frame_count * 3) % (FRAME_W - 24), sy = (frame_count * 2) % (FRAME_H - 24);
    for (int y = 0; y < FRAME_H; y++) {
        for (int x = 0; x < FRAME_W; x++) {
            bool in = x >= sx && x < sx + 24 && y >= sy && y < sy + 24;
            p[y * FRAME_W + x] = in ? 255 : (uint8_t)((x + y) & 0x7F);
        }
    }
    put_u32(p + (FRAME_H - 1) * FRAME_W, frame_count);
}

// ---- answering requests ----

static void answer_sysinfo(void) {
    uint32_t w[19] = {0};
    w[0] = *(volatile uint32_t *)0xE000ED00;    // CPUID
    w[1] = 0x4F4D5600; w[2] = 0x2D52504B; w[3] = 0x0000CA11;  // device id: a fixed UID
    w[4] = (0x1209u << 16) | 0xABD1u;           // OpenMV's USB VID:PID
    w[5] = 0x7725;                              // the H7's OV7725 sensor id
    w[10] = (1u << 4) | (1u << 6);              // JPEG encoder, CRC unit
    w[12] = 2048;                               // flash KiB
    w[13] = 1024;                               // RAM KiB
    w[14] = 400;                                // frame buffer KiB
    w[15] = 64;                                 // stream buffer KiB
    omvp_respond((const uint8_t *)w, sizeof(w), false);
}

static void answer_memory(void) {
    gc_info_t info;
    gc_info(&info);
    uint8_t b[4 + 24] = {1};
    put_u32(b + 4 + 4, (uint32_t)info.total);
    put_u32(b + 4 + 8, (uint32_t)info.used);
    put_u32(b + 4 + 12, (uint32_t)info.free);
    omvp_respond(b, sizeof(b), false);
}

// The channel list, answered like a read (in pieces, FRAGMENT on all but the last).
#define CH_LIST (0xFF)
static uint8_t list_buf[MAX_CHANNELS * 16];

static void send_read_piece(void);

static void answer_list(void) {
    size_t n = 0;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (channels[i].used) {
            uint8_t *e = list_buf + n * 16;
            memset(e, 0, 16);
            e[0] = i;
            e[1] = channels[i].flags;
            memcpy(e + 2, channels[i].name, NAME_SIZE);
            n++;
        }
    }
    reading.active = true;
    reading.channel = CH_LIST;
    reading.offset = 0;
    reading.remaining = n * 16;
    send_read_piece();
}

static uint32_t channel_poll_bits(void) {
    uint32_t bits = 0;
    if (script_running) {
        bits |= 1u << CH_STDIN;
    }
    if (out_len) {
        bits |= 1u << CH_STDOUT;
    }
    if (stream_enabled) {
        bits |= 1u << CH_STREAM;
    }
    for (int i = 1; i < MAX_CHANNELS; i++) {
        if (is_dynamic(i) && backend_has(i, MP_QSTR_poll)) {
            mp_obj_t r = backend_call(i, MP_QSTR_poll, 0, NULL);
            if (r != MP_OBJ_NULL && mp_obj_is_true(r)) {
                bits |= 1u << i;
            }
        }
    }
    return bits;
}

static size_t channel_size(int ch, bool *ok) {
    *ok = true;
    if (ch == CH_STDOUT) {
        return out_len;
    }
    if (ch == CH_STREAM) {
        return stream_locked ? sizeof(frame) : 0;
    }
    if (is_dynamic(ch) && backend_has(ch, MP_QSTR_size)) {
        mp_obj_t r = backend_call(ch, MP_QSTR_size, 0, NULL);
        return r == MP_OBJ_NULL ? 0 : mp_obj_get_int(r);
    }
    *ok = false;
    return 0;
}

// Reads the next piece of the CHANNEL_READ in progress into `piece`; its length, or -1.
static int read_piece(void) {
    uint32_t want = MIN(reading.remaining, MIN(READ_PIECE, omvp_max_payload()));
    int ch = reading.channel;
    if (ch == CH_LIST) {
        memcpy(piece, list_buf + reading.offset, want);
        return want;
    }
    if (ch == CH_STDOUT) {
        return stdout_get(piece, want);
    }
    if (ch == CH_STREAM) {
        if (reading.offset >= sizeof(frame)) {
            return -1;
        }
        want = MIN(want, sizeof(frame) - reading.offset);
        memcpy(piece, frame + reading.offset, want);
        return want;
    }
    mp_obj_t args[2] = {mp_obj_new_int(reading.offset), mp_obj_new_int(want)};
    mp_obj_t r = backend_call(ch, MP_QSTR_read, 2, args);
    mp_buffer_info_t bi;
    if (r == MP_OBJ_NULL || !mp_get_buffer(r, &bi, MP_BUFFER_READ)) {
        return -1;
    }
    size_t n = MIN(bi.len, want);
    memcpy(piece, bi.buf, n);
    return n;
}

static void send_read_piece(void) {
    int n = read_piece();
    if (n <= 0) {
        reading.active = false;
        omvp_respond_status(OMVP_STATUS_FAILED);
        return;
    }
    reading.offset += n;
    reading.remaining -= n;
    omvp_respond(piece, n, reading.remaining > 0);
    reading.active = reading.remaining > 0;
}

static bool ioctl_size_ok(int ch, uint32_t cmd, size_t len) {
    if (ch == CH_STDIN) {
        return cmd >= 1 && cmd <= 3 && len == 0;
    }
    if (ch == CH_STREAM) {
        return (cmd == 0 || cmd == 1 || cmd == 3) ? len == 4 : (cmd == 2 && len == 8);
    }
    return false;
}

static int builtin_ioctl(int ch, uint32_t cmd, const uint8_t *arg) {
    if (ch == CH_STDIN) {
        switch (cmd) {
            case 1:     // STOP
                if (script_running) {
                    mp_sched_keyboard_interrupt();
                }
                return 0;
            case 2:     // EXEC: the REPL's idle wait runs it once the running one stopped.
                if (!script_len) {
                    return -1;
                }
                exec_pending = true;
                if (script_running) {
                    mp_sched_keyboard_interrupt();
                }
                return 0;
            case 3:     // RESET
                script_len = 0;
                return 0;
        }
        return -1;
    }
    if (ch == CH_STREAM) {
        uint32_t v;
        memcpy(&v, arg, 4);
        if (cmd == 0) {
            stream_enabled = v != 0;
        }
        return 0;
    }
    return -1;
}

static void answer(const omvp_action_t *a) {
    int ch = a->channel;
    switch (a->request) {
        case OMVP_RQ_SYS_RESET:
        case OMVP_RQ_SYS_BOOT:
            // No answer, as on a cam: the board resets (QEMU boots the image again).
            uart_tx_done(PROTO_UART);
            *(volatile uint32_t *)0xE000ED0C = (0x5fau << 16) | (1u << 2);
            for (;;) {
                __asm volatile ("dsb");
            }
        case OMVP_RQ_SYS_INFO:
            answer_sysinfo();
            return;
        case OMVP_RQ_SYS_MEMORY:
            answer_memory();
            return;
        case OMVP_RQ_CHANNEL_LIST:
            answer_list();
            return;
        case OMVP_RQ_CHANNEL_POLL: {
            uint32_t bits = channel_poll_bits();
            omvp_respond((const uint8_t *)&bits, 4, false);
            return;
        }
        case OMVP_RQ_CHANNEL_LOCK: {
            uint32_t now = mp_hal_ticks_ms();
            bool locked = false;
            if (lock_ever && now - last_lock_ms <= lock_interval_ms) {
                locked = false;
            } else if (ch == CH_STREAM && stream_enabled && !stream_locked) {
                render_frame();
                stream_locked = locked = true;
            } else if (is_dynamic(ch) && backend_has(ch, MP_QSTR_lock)) {
                mp_obj_t r = backend_call(ch, MP_QSTR_lock, 0, NULL);
                locked = r != MP_OBJ_NULL && mp_obj_is_true(r);
            }
            if (locked) {
                last_lock_ms = now;
                lock_ever = true;
            }
            omvp_respond_status(locked ? OMVP_STATUS_SUCCESS : OMVP_STATUS_BUSY);
            return;
        }
        case OMVP_RQ_CHANNEL_UNLOCK: {
            bool ok = false;
            if (ch == CH_STREAM && stream_locked) {
                stream_locked = false;
                ok = true;
            } else if (is_dynamic(ch) && backend_has(ch, MP_QSTR_unlock)) {
                mp_obj_t r = backend_call(ch, MP_QSTR_unlock, 0, NULL);
                ok = r != MP_OBJ_NULL && mp_obj_is_true(r);
            }
            omvp_respond_status(ok ? OMVP_STATUS_SUCCESS : OMVP_STATUS_BUSY);
            return;
        }
        case OMVP_RQ_CHANNEL_SHAPE: {
            mp_obj_t r = is_dynamic(ch) ? backend_call(ch, MP_QSTR_shape, 0, NULL) : MP_OBJ_NULL;
            if (r == MP_OBJ_NULL || !mp_obj_is_type(r, &mp_type_tuple)) {
                omvp_respond_status(OMVP_STATUS_INVALID);
                return;
            }
            size_t n;
            mp_obj_t *items;
            mp_obj_get_array(r, &n, &items);
            uint32_t shape[4];
            n = MIN(n, 4);
            for (size_t i = 0; i < n; i++) {
                shape[i] = mp_obj_get_int(items[i]);
            }
            omvp_respond((const uint8_t *)shape, n * 4, false);
            return;
        }
        case OMVP_RQ_CHANNEL_SIZE: {
            bool ok;
            uint32_t size = channel_size(ch, &ok);
            if (ok) {
                omvp_respond((const uint8_t *)&size, 4, false);
            } else {
                omvp_respond_status(OMVP_STATUS_INVALID);
            }
            return;
        }
        case OMVP_RQ_CHANNEL_READ:
            if (ch == CH_STDOUT || (ch == CH_STREAM && stream_locked)
                || (is_dynamic(ch) && backend_has(ch, MP_QSTR_read))) {
                reading.active = true;
                reading.channel = ch;
                reading.offset = a->offset;
                reading.remaining = a->length;
                send_read_piece();
            } else {
                omvp_respond_status(OMVP_STATUS_INVALID);
            }
            return;
        case OMVP_RQ_CHANNEL_WRITE:
            if (ch == CH_STDIN) {
                if (a->offset == 0) {
                    script_len = 0;
                }
                if (a->offset != script_len || script_len + a->len > SCRIPT_SIZE) {
                    omvp_respond_status(OMVP_STATUS_FAILED);
                    return;
                }
                memcpy(script + script_len, a->data, a->len);
                script_len += a->len;
                omvp_respond_status(OMVP_STATUS_SUCCESS);
            } else if (is_dynamic(ch) && backend_has(ch, MP_QSTR_write)) {
                mp_obj_t args[2] = {mp_obj_new_int(a->offset),
                                    mp_obj_new_bytearray_by_ref(a->len, (void *)a->data)};
                mp_obj_t r = backend_call(ch, MP_QSTR_write, 2, args);
                bool ok = r != MP_OBJ_NULL && (r == mp_const_none || !mp_obj_is_int(r) || mp_obj_get_int(r) > 0);
                omvp_respond_status(ok ? OMVP_STATUS_SUCCESS : OMVP_STATUS_FAILED);
            } else {
                omvp_respond_status(OMVP_STATUS_INVALID);
            }
            return;
        case OMVP_RQ_CHANNEL_IOCTL:
            if (ch == CH_STDIN || ch == CH_STREAM) {
                if (!ioctl_size_ok(ch, a->cmd, a->len)) {
                    omvp_respond_status(OMVP_STATUS_INVALID);
                } else {
                    omvp_respond_status(builtin_ioctl(ch, a->cmd, a->data) ? OMVP_STATUS_FAILED : OMVP_STATUS_SUCCESS);
                }
            } else if (is_dynamic(ch) && backend_has(ch, MP_QSTR_ioctl)) {
                mp_obj_t args[3] = {mp_obj_new_int_from_uint(a->cmd), mp_obj_new_int(a->len),
                                    a->len ? mp_obj_new_bytearray_by_ref(a->len, (void *)a->data) : mp_const_none};
                mp_obj_t r = backend_call(ch, MP_QSTR_ioctl, 3, args);
                bool ok = r != MP_OBJ_NULL && (r == mp_const_none || !mp_obj_is_int(r) || mp_obj_get_int(r) == 0);
                omvp_respond_status(ok ? OMVP_STATUS_SUCCESS : OMVP_STATUS_FAILED);
            } else {
                omvp_respond_status(OMVP_STATUS_INVALID);
            }
            return;
        default:
            omvp_respond_status(OMVP_STATUS_INVALID);
    }
}

// ---- the protocol task ----

static void pump_uart(void) {
    uint8_t buf[256];
    size_t room;
    while ((room = omvp_rx_free()) > 0 && uart_rx_any(PROTO_UART)) {
        size_t n = uart_rx_read(PROTO_UART, buf, MIN(room, sizeof(buf)));
        omvp_receive(buf, n);
    }
}

static void send_pending_events(void) {
    if (pending_registered && omvp_send_event(0, EVENT_CHANNEL_REGISTERED, false) != -2) {
        pending_registered--;
    } else if (pending_stdin_event >= 0 && omvp_send_event(CH_STDIN, pending_stdin_event, false) != -2) {
        pending_stdin_event = -1;
    }
}

static void protocol_run(void) {
    if (task_running) {
        return;
    }
    task_running = true;
    omvp_action_t a;
    for (int idle = 0; idle < 2;) {
        pump_uart();
        switch (omvp_poll(mp_hal_ticks_ms(), &a)) {
            case OMVP_IDLE:
                if (pending_registered || pending_stdin_event >= 0) {
                    send_pending_events();
                }
                idle++;
                break;
            case OMVP_TRANSMIT:
                idle = 0;
                // A host that stopped reading must not stall the cam: give up the packet.
                uart_tx_write(PROTO_UART, a.data, a.len, 20);
                break;
            case OMVP_REQUEST:
                idle = 0;
                answer(&a);
                break;
            case OMVP_MORE:
                idle = 0;
                if (reading.active) {
                    send_read_piece();
                } else {
                    omvp_respond_status(OMVP_STATUS_FAILED);
                }
                break;
            case OMVP_RESET:
                idle = 0;
                reading.active = false;
                stream_locked = false;
                for (int i = 1; i < MAX_CHANNELS; i++) {
                    if (is_dynamic(i) && backend_has(i, MP_QSTR_unlock)) {
                        backend_call(i, MP_QSTR_unlock, 0, NULL);
                    }
                }
                break;
        }
    }
    task_running = false;
}

static mp_obj_t protocol_task(mp_obj_t arg) {
    (void)arg;
    task_queued = false;
    protocol_run();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(protocol_task_obj, protocol_task);

// ---- port hooks ----

void board_systick_hook(uint32_t ms) {
    (void)ms;
    if (!ready || task_queued || task_running) {
        return;
    }
    int64_t deadline = omvp_poll_timeout();
    if (uart_rx_any(PROTO_UART) || pending_registered || pending_stdin_event >= 0
        || (deadline >= 0 && (int64_t)ms >= deadline)) {
        task_queued = mp_sched_schedule(MP_OBJ_FROM_PTR(&protocol_task_obj), mp_const_none);
    }
}

void board_stdout_hook(const char *s, size_t n) {
    stdout_put((const uint8_t *)s, n);
}

static void drop_dynamic_channels(void) {
    for (int i = 1; i < MAX_CHANNELS; i++) {
        if (is_dynamic(i)) {
            backend_call(i, MP_QSTR_deinit, 0, NULL);
            channels[i].used = false;
        }
        MP_STATE_VM(protocol_backends)[i] = MP_OBJ_NULL;
        MP_STATE_VM(protocol_handles)[i] = MP_OBJ_NULL;
    }
}

// Runs an uploaded script (stdin EXEC) with fresh globals, as the firmware's soft reboot
// gives it; true when it ran one.
bool board_stdin_idle_hook(void) {
    if (!ready || !exec_pending) {
        return false;
    }
    exec_pending = false;
    drop_dynamic_channels();
    script_running = true;
    pending_stdin_event = 1;
    mp_obj_dict_t *saved_globals = mp_globals_get();
    mp_obj_dict_t *saved_locals = mp_locals_get();
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_dict_t *globals = MP_OBJ_TO_PTR(mp_obj_new_dict(0));
        mp_obj_dict_store(MP_OBJ_FROM_PTR(globals), MP_OBJ_NEW_QSTR(MP_QSTR___name__), MP_OBJ_NEW_QSTR(MP_QSTR___main__));
        // The globals first: the compiled code (and every function in it) keeps the ones
        // current when it is made.
        mp_globals_set(globals);
        mp_locals_set(globals);
        mp_lexer_t *lex = mp_lexer_new_from_str_len(MP_QSTR__lt_stdin_gt_, script, script_len, 0);
        qstr source = lex->source_name;
        mp_parse_tree_t tree = mp_parse(lex, MP_PARSE_FILE_INPUT);
        mp_obj_t code = mp_compile(&tree, source, false);
        mp_call_function_0(code);
        nlr_pop();
    } else {
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    mp_globals_set(saved_globals);
    mp_locals_set(saved_locals);
    script_running = false;
    pending_stdin_event = 0;
    return true;
}

void board_boot_hook(void) {
    static bool engine_up;
    // A soft reset closes the UARTs (machine_uart_deinit_all); the engine keeps its state.
    if (!uart_is_enabled(PROTO_UART)) {
        uart_init(PROTO_UART, PROTO_BAUDRATE);
    }
    if (!engine_up) {
        // Once per power-up: a soft reset keeps the link (and the host's sequence).
        engine_init(true, true, true, true, 4096 - 14, 3, 500);
        engine_up = true;
    }
    memset(channels, 0, sizeof(channels));
    channel_set(0, "uart", FLAG_PHYSICAL | FLAG_READ | FLAG_WRITE);
    channel_set(CH_STDIN, "stdin", FLAG_WRITE | FLAG_EXEC);
    channel_set(CH_STDOUT, "stdout", FLAG_READ);
    channel_set(CH_STREAM, "stream", FLAG_READ | FLAG_LOCK | FLAG_STREAM);
    for (int i = 0; i < MAX_CHANNELS; i++) {
        MP_STATE_VM(protocol_backends)[i] = MP_OBJ_NULL;
        MP_STATE_VM(protocol_handles)[i] = MP_OBJ_NULL;
    }
    stream_locked = false;
    reading.active = false;
    task_queued = false;
    task_running = false;
    ready = true;
}

void board_soft_reset_hook(void) {
    ready = false;
    drop_dynamic_channels();
    omvp_send_event(0, EVENT_SOFT_REBOOT, false);
    protocol_run();
}

// ---- module protocol ----

typedef struct {
    mp_obj_base_t base;
    uint8_t id;
} protocol_channel_obj_t;

static mp_obj_t channel_send_event(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    static const mp_arg_t allowed[] = {
        { MP_QSTR_event, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_wait_ack, MP_ARG_BOOL, {.u_bool = false} },
    };
    protocol_channel_obj_t *self = MP_OBJ_TO_PTR(pos_args[0]);
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all(n_args - 1, pos_args + 1, kw_args, MP_ARRAY_SIZE(allowed), allowed, args);
    // A packet in flight: let the task finish it first.
    protocol_run();
    int32_t r = omvp_send_event(self->id, (uint16_t)args[0].u_int, args[1].u_bool);
    if (r == -2) {
        protocol_run();
        r = omvp_send_event(self->id, (uint16_t)args[0].u_int, args[1].u_bool);
    }
    if (r != 0) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("Failed to send channel event"));
    }
    protocol_run();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(channel_send_event_obj, 2, channel_send_event);

static void channel_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    (void)kind;
    protocol_channel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_printf(print, "<ProtocolChannel: %s>", channels[self->id].name);
}

static const mp_rom_map_elem_t channel_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_send_event), MP_ROM_PTR(&channel_send_event_obj) },
};
static MP_DEFINE_CONST_DICT(channel_locals, channel_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    protocol_channel_type,
    MP_QSTR_ProtocolChannel,
    MP_TYPE_FLAG_NONE,
    print, channel_print,
    locals_dict, &channel_locals
    );

static mp_obj_t protocol_init(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    static const mp_arg_t allowed[] = {
        { MP_QSTR_crc, MP_ARG_BOOL, {.u_bool = true} },
        { MP_QSTR_seq, MP_ARG_BOOL, {.u_bool = true} },
        { MP_QSTR_ack, MP_ARG_BOOL, {.u_bool = true} },
        { MP_QSTR_events, MP_ARG_BOOL, {.u_bool = true} },
        { MP_QSTR_max_payload, MP_ARG_INT, {.u_int = 4096 - 14} },
        { MP_QSTR_rtx_retries, MP_ARG_INT, {.u_int = 3} },
        { MP_QSTR_rtx_timeout_ms, MP_ARG_INT, {.u_int = 500} },
        { MP_QSTR_lock_interval_ms, MP_ARG_INT, {.u_int = 10} },
        { MP_QSTR_poll_ms, MP_ARG_INT, {.u_int = 0} },
    };
    mp_arg_val_t a[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed), allowed, a);
    if (a[4].u_int < 50 || a[4].u_int > 4096 - 14 || a[7].u_int < 10) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("Failed to initialize protocol"));
    }
    engine_init(a[0].u_bool, a[1].u_bool, a[2].u_bool, a[3].u_bool, a[4].u_int, a[5].u_int, a[6].u_int);
    lock_interval_ms = a[7].u_int;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(protocol_init_obj, 0, protocol_init);

static mp_obj_t protocol_register(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    static const mp_arg_t allowed[] = {
        { MP_QSTR_name, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_flags, MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_backend, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
    };
    mp_arg_val_t a[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed), allowed, a);
    const char *name = mp_obj_str_get_str(a[0].u_obj);
    int id = -1;
    for (int i = 1; i < MAX_CHANNELS; i++) {
        if (!channels[i].used) {
            id = i;
            break;
        }
    }
    if (id < 0) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("Failed to register protocol channel"));
    }
    MP_STATE_VM(protocol_backends)[id] = a[2].u_obj;
    if (backend_has(id, MP_QSTR_init) && backend_call(id, MP_QSTR_init, 0, NULL) == MP_OBJ_NULL) {
        MP_STATE_VM(protocol_backends)[id] = MP_OBJ_NULL;
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("Failed to register protocol channel"));
    }
    uint8_t flags = (a[1].u_int & 0xFF) | FLAG_DYNAMIC;
    if (backend_has(id, MP_QSTR_read) || backend_has(id, MP_QSTR_readp)) {
        flags |= FLAG_READ;
    }
    if (backend_has(id, MP_QSTR_write)) {
        flags |= FLAG_WRITE;
    }
    if (backend_has(id, MP_QSTR_lock) && backend_has(id, MP_QSTR_unlock)) {
        flags |= FLAG_LOCK;
    }
    channel_set(id, name, flags);
    protocol_channel_obj_t *h = mp_obj_malloc(protocol_channel_obj_t, &protocol_channel_type);
    h->id = id;
    MP_STATE_VM(protocol_handles)[id] = MP_OBJ_FROM_PTR(h);
    pending_registered++;
    return MP_OBJ_FROM_PTR(h);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(protocol_register_obj, 0, protocol_register);

static mp_obj_t protocol_is_active(void) {
    return mp_obj_new_bool(ready);
}
static MP_DEFINE_CONST_FUN_OBJ_0(protocol_is_active_obj, protocol_is_active);

// Runs the protocol task now (scripts that poll in a tight loop without sleeping).
static mp_obj_t protocol_poll(void) {
    protocol_run();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(protocol_poll_obj, protocol_poll);

static mp_obj_t protocol_stats(void) {
    uint32_t s[8];
    omvp_stats(s);
    mp_obj_t t[8];
    for (int i = 0; i < 8; i++) {
        t[i] = mp_obj_new_int_from_uint(s[i]);
    }
    return mp_obj_new_tuple(8, t);
}
static MP_DEFINE_CONST_FUN_OBJ_0(protocol_stats_obj, protocol_stats);

static const mp_rom_map_elem_t protocol_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_protocol) },
    { MP_ROM_QSTR(MP_QSTR_init), MP_ROM_PTR(&protocol_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_is_active), MP_ROM_PTR(&protocol_is_active_obj) },
    { MP_ROM_QSTR(MP_QSTR_register), MP_ROM_PTR(&protocol_register_obj) },
    { MP_ROM_QSTR(MP_QSTR_poll), MP_ROM_PTR(&protocol_poll_obj) },
    { MP_ROM_QSTR(MP_QSTR_stats), MP_ROM_PTR(&protocol_stats_obj) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_FLAG_READ), MP_ROM_INT(FLAG_READ) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_FLAG_WRITE), MP_ROM_INT(FLAG_WRITE) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_FLAG_LOCK), MP_ROM_INT(FLAG_LOCK) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_FLAG_PHYSICAL), MP_ROM_INT(FLAG_PHYSICAL) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_ID_TRANSPORT), MP_ROM_INT(0) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_ID_STDIN), MP_ROM_INT(CH_STDIN) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_ID_STDOUT), MP_ROM_INT(CH_STDOUT) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_ID_STREAM), MP_ROM_INT(CH_STREAM) },
    { MP_ROM_QSTR(MP_QSTR_CHANNEL_ID_PROFILE), MP_ROM_INT(4) },
};
static MP_DEFINE_CONST_DICT(protocol_globals, protocol_globals_table);

const mp_obj_module_t protocol_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&protocol_globals,
};
MP_REGISTER_MODULE(MP_QSTR_protocol, protocol_module);
