// armv6m native module entry (rpc.mpy only; not part of firmware builds). mpy_ld.py starts the module's text with a
// 16-bit Thumb B to mpy_init, which reaches +-2 KiB: the glue's own mpy_init lies further
// on, so on armv6m the Makefile renames it (-Dmpy_init=rpc_natmod_init) and links this
// file first, whose mpy_init is at the start of the text and jumps on with a BL.
#include "py/dynruntime.h"

#undef mpy_init
mp_obj_t rpc_natmod_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    return rpc_natmod_init(self, n_args, n_kw, args);
}
