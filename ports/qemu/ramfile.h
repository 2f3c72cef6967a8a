// The RAM file store of the NATMOD=1 build (ramfile.c): qemu.ramfile() writes files that
// `import` reads, so a native module (.mpy) can be copied onto the virtual cam.
#ifndef QEMU_RAMFILE_H
#define QEMU_RAMFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// True and the file's bytes (in the store) when `name` is a file.
bool qemu_ramfile_get(const char *name, const uint8_t **data, size_t *len);

#endif
