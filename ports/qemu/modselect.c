// A minimal select module for the virtual cam: select.poll() and select.select() over any
// object with the stream protocol's MP_STREAM_POLL (machine.UART, sys.stdin).
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/objlist.h"
#include "py/runtime.h"
#include "py/stream.h"

typedef struct _select_poll_obj_t {
    mp_obj_base_t base;
    // stream object -> small int: the events asked for (bits 0-7) and, after a poll, the
    // events that were ready (bits 8-15).
    mp_map_t registered;
    mp_obj_tuple_t *ipoll_result;  // reused by ipoll's iterator: no allocation per poll
    size_t ipoll_index;
} select_poll_obj_t;

#define ENTRY(events, ready) MP_OBJ_NEW_SMALL_INT((events) | ((ready) << 8))
#define ENTRY_EVENTS(value) (MP_OBJ_SMALL_INT_VALUE(value) & 0xff)
#define ENTRY_READY(value) ((MP_OBJ_SMALL_INT_VALUE(value) >> 8) & 0xff)

static mp_uint_t select_poll_one(mp_obj_t obj, mp_uint_t events) {
    const mp_stream_p_t *stream = mp_get_stream(obj);
    int errcode;
    mp_uint_t ret = stream->ioctl(obj, MP_STREAM_POLL, events | MP_STREAM_POLL_ERR | MP_STREAM_POLL_HUP, &errcode);
    if (ret == MP_STREAM_ERROR) {
        return MP_STREAM_POLL_ERR;
    }
    return ret & (events | MP_STREAM_POLL_ERR | MP_STREAM_POLL_HUP | MP_STREAM_POLL_NVAL);
}

static bool select_timed_out(uint32_t start, mp_int_t timeout_ms) {
    return timeout_ms >= 0 && (mp_int_t)(mp_hal_ticks_ms() - start) >= timeout_ms;
}

static mp_obj_t select_poll_register(size_t n_args, const mp_obj_t *args) {
    select_poll_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_get_stream_raise(args[1], MP_STREAM_OP_IOCTL);
    mp_uint_t events = n_args > 2 ? mp_obj_get_int(args[2]) : (MP_STREAM_POLL_RD | MP_STREAM_POLL_WR);
    mp_map_lookup(&self->registered, args[1], MP_MAP_LOOKUP_ADD_IF_NOT_FOUND)->value = ENTRY(events & 0xff, 0);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(select_poll_register_obj, 2, 3, select_poll_register);

static mp_obj_t select_poll_unregister(mp_obj_t self_in, mp_obj_t obj) {
    select_poll_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_map_lookup(&self->registered, obj, MP_MAP_LOOKUP_REMOVE_IF_FOUND);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(select_poll_unregister_obj, select_poll_unregister);

static mp_obj_t select_poll_modify(mp_obj_t self_in, mp_obj_t obj, mp_obj_t events) {
    select_poll_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_map_elem_t *elem = mp_map_lookup(&self->registered, obj, MP_MAP_LOOKUP);
    if (elem == NULL) {
        mp_raise_OSError(MP_ENOENT);
    }
    elem->value = ENTRY(mp_obj_get_int(events) & 0xff, 0);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(select_poll_modify_obj, select_poll_modify);

// Checks every registered object, recording what is ready; waits (sleeping until the next
// interrupt between checks) until something is or timeout_ms (-1: forever) has passed.
static size_t select_poll_wait(select_poll_obj_t *self, size_t n_args, const mp_obj_t *args) {
    mp_int_t timeout_ms = -1;
    if (n_args > 1 && args[1] != mp_const_none) {
        timeout_ms = mp_obj_get_int(args[1]);
    }
    uint32_t start = mp_hal_ticks_ms();
    for (;;) {
        size_t ready = 0;
        for (size_t i = 0; i < self->registered.alloc; ++i) {
            if (!mp_map_slot_is_filled(&self->registered, i)) {
                continue;
            }
            mp_map_elem_t *elem = &self->registered.table[i];
            mp_uint_t events = ENTRY_EVENTS(elem->value);
            mp_uint_t revents = select_poll_one(elem->key, events);
            elem->value = ENTRY(events, revents);
            ready += revents != 0;
        }
        if (ready || select_timed_out(start, timeout_ms)) {
            return ready;
        }
        mp_event_wait_ms(1);
    }
}

// poll(timeout_ms=-1) -> [(obj, events), ...]
static mp_obj_t select_poll_poll(size_t n_args, const mp_obj_t *args) {
    select_poll_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    size_t ready = select_poll_wait(self, n_args, args);
    mp_obj_t list = mp_obj_new_list(ready, NULL);
    size_t n = 0;
    for (size_t i = 0; i < self->registered.alloc && n < ready; ++i) {
        mp_map_elem_t *elem = &self->registered.table[i];
        if (mp_map_slot_is_filled(&self->registered, i) && ENTRY_READY(elem->value)) {
            mp_obj_t pair[2] = {elem->key, MP_OBJ_NEW_SMALL_INT(ENTRY_READY(elem->value))};
            ((mp_obj_list_t *)MP_OBJ_TO_PTR(list))->items[n++] = mp_obj_new_tuple(2, pair);
        }
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(select_poll_poll_obj, 1, 2, select_poll_poll);

// ipoll(timeout_ms=-1, flags=0) -> the poll object, iterating over (obj, events) tuples; the
// tuple is reused, so polling allocates nothing.
static mp_obj_t select_poll_ipoll(size_t n_args, const mp_obj_t *args) {
    select_poll_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    select_poll_wait(self, n_args, args);
    self->ipoll_index = 0;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(select_poll_ipoll_obj, 1, 3, select_poll_ipoll);

static mp_obj_t select_poll_iternext(mp_obj_t self_in) {
    select_poll_obj_t *self = MP_OBJ_TO_PTR(self_in);
    while (self->ipoll_index < self->registered.alloc) {
        size_t i = self->ipoll_index++;
        mp_map_elem_t *elem = &self->registered.table[i];
        if (mp_map_slot_is_filled(&self->registered, i) && ENTRY_READY(elem->value)) {
            self->ipoll_result->items[0] = elem->key;
            self->ipoll_result->items[1] = MP_OBJ_NEW_SMALL_INT(ENTRY_READY(elem->value));
            return MP_OBJ_FROM_PTR(self->ipoll_result);
        }
    }
    return MP_OBJ_STOP_ITERATION;
}

static const mp_rom_map_elem_t select_poll_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_register), MP_ROM_PTR(&select_poll_register_obj) },
    { MP_ROM_QSTR(MP_QSTR_unregister), MP_ROM_PTR(&select_poll_unregister_obj) },
    { MP_ROM_QSTR(MP_QSTR_modify), MP_ROM_PTR(&select_poll_modify_obj) },
    { MP_ROM_QSTR(MP_QSTR_poll), MP_ROM_PTR(&select_poll_poll_obj) },
    { MP_ROM_QSTR(MP_QSTR_ipoll), MP_ROM_PTR(&select_poll_ipoll_obj) },
};
static MP_DEFINE_CONST_DICT(select_poll_locals_dict, select_poll_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    select_poll_type,
    MP_QSTR_poll,
    MP_TYPE_FLAG_ITER_IS_ITERNEXT,
    iter, select_poll_iternext,
    locals_dict, &select_poll_locals_dict
    );

static mp_obj_t select_poll(void) {
    select_poll_obj_t *self = mp_obj_malloc(select_poll_obj_t, &select_poll_type);
    mp_map_init(&self->registered, 0);
    mp_obj_t none_pair[2] = {mp_const_none, mp_const_none};
    self->ipoll_result = MP_OBJ_TO_PTR(mp_obj_new_tuple(2, none_pair));
    self->ipoll_index = 0;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_0(select_poll_obj, select_poll);

// select(rlist, wlist, xlist[, timeout_s]) -> (readable, writable, errored)
static mp_obj_t select_select(size_t n_args, const mp_obj_t *args) {
    mp_int_t timeout_ms = -1;
    if (n_args > 3 && args[3] != mp_const_none) {
        timeout_ms = (mp_int_t)(mp_obj_get_float(args[3]) * 1000);
    }
    static const mp_uint_t wanted[3] = {MP_STREAM_POLL_RD, MP_STREAM_POLL_WR, MP_STREAM_POLL_ERR};
    size_t len[3];
    mp_obj_t *items[3];
    for (int k = 0; k < 3; ++k) {
        mp_obj_get_array(args[k], &len[k], &items[k]);
        for (size_t i = 0; i < len[k]; ++i) {
            mp_get_stream_raise(items[k][i], MP_STREAM_OP_IOCTL);
        }
    }
    mp_obj_t lists[3];
    uint32_t start = mp_hal_ticks_ms();
    for (;;) {
        size_t found = 0;
        for (int k = 0; k < 3; ++k) {
            lists[k] = mp_obj_new_list(0, NULL);
            for (size_t i = 0; i < len[k]; ++i) {
                if (select_poll_one(items[k][i], wanted[k]) & wanted[k]) {
                    mp_obj_list_append(lists[k], items[k][i]);
                    found += 1;
                }
            }
        }
        if (found || select_timed_out(start, timeout_ms)) {
            return mp_obj_new_tuple(3, lists);
        }
        mp_event_wait_ms(1);
    }
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(select_select_obj, 3, 4, select_select);

static const mp_rom_map_elem_t select_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_select) },
    { MP_ROM_QSTR(MP_QSTR_poll), MP_ROM_PTR(&select_poll_obj) },
    { MP_ROM_QSTR(MP_QSTR_select), MP_ROM_PTR(&select_select_obj) },
    { MP_ROM_QSTR(MP_QSTR_POLLIN), MP_ROM_INT(MP_STREAM_POLL_RD) },
    { MP_ROM_QSTR(MP_QSTR_POLLOUT), MP_ROM_INT(MP_STREAM_POLL_WR) },
    { MP_ROM_QSTR(MP_QSTR_POLLERR), MP_ROM_INT(MP_STREAM_POLL_ERR) },
    { MP_ROM_QSTR(MP_QSTR_POLLHUP), MP_ROM_INT(MP_STREAM_POLL_HUP) },
};
static MP_DEFINE_CONST_DICT(select_module_globals, select_module_globals_table);

const mp_obj_module_t mp_module_select = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&select_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_select, mp_module_select);
