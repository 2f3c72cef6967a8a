// A RAM file store for the virtual cam's "stock firmware" build (NATMOD=1): enough of a
// filesystem for `import rpc` to find a copied rpc.mpy, the way a real cam finds it on its
// flash drive. Files are written with qemu.ramfile(name, data[, append]) (over the raw REPL)
// and live in a static area outside the GC heap, so they survive a soft reset (Ctrl-D) like
// files on flash; a power cycle (a new QEMU) empties it. The import system reads them
// through the hooks a port provides: mp_import_stat, mp_reader_new_file (.mpy files) and
// mp_lexer_new_from_file (.py files). There are no directories.
//
// Layout: entries packed one after another from the start of the area, each a header
// (name length, data length), the name, then the data, padded to 4 bytes.
#include <string.h>

#include "py/builtin.h"
#include "py/lexer.h"
#include "py/mperrno.h"
#include "py/reader.h"
#include "py/runtime.h"

#include "ramfile.h"

#if QEMU_RAMFILE

#ifndef QEMU_RAMFILE_SIZE
#define QEMU_RAMFILE_SIZE (256 * 1024)
#endif
#define NAME_MAX_LEN (MICROPY_ALLOC_PATH_MAX)

typedef struct {
    uint32_t name_len;
    uint32_t data_len;
} entry_t;

static uint8_t store[QEMU_RAMFILE_SIZE] __attribute__((aligned(4)));
static size_t store_used;

static size_t entry_size(const entry_t *e) {
    return sizeof(entry_t) + ((e->name_len + e->data_len + 3) & ~3u);
}

static entry_t *find(const char *name, size_t name_len) {
    for (size_t at = 0; at < store_used;) {
        entry_t *e = (entry_t *)&store[at];
        if (e->name_len == name_len && memcmp(e + 1, name, name_len) == 0) {
            return e;
        }
        at += entry_size(e);
    }
    return NULL;
}

static void remove_entry(entry_t *e) {
    size_t at = (uint8_t *)e - store;
    size_t size = entry_size(e);
    memmove(&store[at], &store[at + size], store_used - at - size);
    store_used -= size;
}

static void reverse(uint8_t *a, size_t n) {
    for (size_t i = 0; i < n / 2; ++i) {
        uint8_t t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

// Moves an entry to the end of the store (where it can grow), keeping the others in order.
static entry_t *move_to_end(entry_t *e) {
    size_t at = (uint8_t *)e - store;
    size_t size = entry_size(e);
    size_t rest = store_used - at - size;
    if (rest) {
        // Rotate [at, store_used) left by `size`: three reversals, no extra memory.
        reverse(&store[at], size);
        reverse(&store[at + size], rest);
        reverse(&store[at], size + rest);
    }
    return (entry_t *)&store[store_used - size];
}

bool qemu_ramfile_get(const char *name, const uint8_t **data, size_t *len) {
    entry_t *e = find(name, strlen(name));
    if (e == NULL) {
        return false;
    }
    *data = (const uint8_t *)(e + 1) + e->name_len;
    *len = e->data_len;
    return true;
}

// qemu.ramfile(name) -> the file's bytes, or None when there is no such file.
// qemu.ramfile(name, data) writes (replaces) the file; qemu.ramfile(name, data, True)
// appends to it (creating it), for uploads in chunks. qemu.ramfile(name, None) deletes it.
// Returns the file's length after a write. OSError(ENOSPC) when the store is full (the
// file is then left as it was).
static mp_obj_t qemu_ramfile(size_t n_args, const mp_obj_t *args) {
    size_t name_len;
    const char *name = mp_obj_str_get_data(args[0], &name_len);
    if (name_len == 0 || name_len > NAME_MAX_LEN) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad file name length"));
    }
    entry_t *e = find(name, name_len);
    if (n_args == 1) {
        if (e == NULL) {
            return mp_const_none;
        }
        return mp_obj_new_bytes((const byte *)(e + 1) + name_len, e->data_len);
    }
    if (args[1] == mp_const_none) {
        if (e == NULL) {
            mp_raise_OSError(MP_ENOENT);
        }
        remove_entry(e);
        return mp_const_none;
    }
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[1], &buf, MP_BUFFER_READ);
    bool append = n_args > 2 && mp_obj_is_true(args[2]);
    size_t old_len = (e != NULL && append) ? e->data_len : 0;
    size_t new_len = old_len + buf.len;
    size_t new_size = sizeof(entry_t) + ((name_len + new_len + 3) & ~3u);
    size_t freed = e != NULL ? entry_size(e) : 0;
    if (new_len < old_len || store_used - freed + new_size > sizeof(store)) {
        mp_raise_OSError(MP_ENOSPC);
    }
    if (e != NULL && append) {
        e = move_to_end(e);
        store_used -= freed;
    } else {
        if (e != NULL) {
            remove_entry(e);
        }
        e = (entry_t *)&store[store_used];
        e->name_len = name_len;
        memcpy(e + 1, name, name_len);
    }
    memcpy((uint8_t *)(e + 1) + name_len + old_len, buf.buf, buf.len);
    e->data_len = new_len;
    store_used += new_size;
    return MP_OBJ_NEW_SMALL_INT(new_len);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qemu_ramfile_obj, 1, 3, qemu_ramfile);

// qemu.ramfiles() -> {name: length} of every file in the store.
static mp_obj_t qemu_ramfiles(void) {
    mp_obj_t dict = mp_obj_new_dict(0);
    for (size_t at = 0; at < store_used;) {
        entry_t *e = (entry_t *)&store[at];
        mp_obj_dict_store(dict, mp_obj_new_str((const char *)(e + 1), e->name_len),
            MP_OBJ_NEW_SMALL_INT(e->data_len));
        at += entry_size(e);
    }
    return dict;
}
MP_DEFINE_CONST_FUN_OBJ_0(qemu_ramfiles_obj, qemu_ramfiles);

// The import system's hooks. Paths arrive as the import system builds them from sys.path
// ('' first, so "rpc.py", then "rpc.mpy").
mp_import_stat_t mp_import_stat(const char *path) {
    const uint8_t *data;
    size_t len;
    return qemu_ramfile_get(path, &data, &len) ? MP_IMPORT_STAT_FILE : MP_IMPORT_STAT_NO_EXIST;
}

// The .mpy loader's reader. The pinned core's loader reads exact counts and never past the
// end of a whole file, but it does not check for the end either: in a truncated file
// read_uint() would take MP_READER_EOF for a continued number and loop forever. Reading
// past the end raises instead (the loader closes the reader on the way out).
typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
} mpy_reader_t;

static mp_uint_t mpy_readbyte(void *data) {
    mpy_reader_t *r = data;
    if (r->pos >= r->len) {
        mp_raise_ValueError(MP_ERROR_TEXT("truncated .mpy file"));
    }
    return r->data[r->pos++];
}

static void mpy_close(void *data) {
    m_del_obj(mpy_reader_t, data);
}

void mp_reader_new_file(mp_reader_t *reader, qstr filename) {
    const uint8_t *data;
    size_t len;
    if (!qemu_ramfile_get(qstr_str(filename), &data, &len)) {
        mp_raise_OSError(MP_ENOENT);
    }
    // Read in place: the store does not change while the loader reads (it copies what it
    // keeps, machine code included, into the GC heap).
    mpy_reader_t *r = m_new_obj(mpy_reader_t);
    r->data = data;
    r->len = len;
    r->pos = 0;
    reader->data = r;
    reader->readbyte = mpy_readbyte;
    reader->close = mpy_close;
}

mp_lexer_t *mp_lexer_new_from_file(qstr filename) {
    const uint8_t *data;
    size_t len;
    if (!qemu_ramfile_get(qstr_str(filename), &data, &len)) {
        mp_raise_OSError(MP_ENOENT);
    }
    return mp_lexer_new_from_str_len(filename, (const char *)data, len, 0);
}

#endif // QEMU_RAMFILE
