// The virtual cam's main loop: REPL on UART0 (friendly or raw), soft reset on Ctrl-D.
#include <stdio.h>
#include <string.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/gc.h"
#include "py/lexer.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "shared/readline/readline.h"
#include "shared/runtime/gchelper.h"
#include "shared/runtime/pyexec.h"

#include "board.h"
#include "cmsdk_uart.h"

extern uint32_t _heap_start, _heap_end, _sstack, _estack;
void board_systick_init(void);
void machine_uart_deinit_all(void);

MP_WEAK void board_boot_hook(void) {
}
MP_WEAK void board_soft_reset_hook(void) {
}

// Stack kept free below the limit for the code that reports the overflow.
#define STACK_GUARD (2048)

int main(void) {
    board_systick_init();
    uart_init(MP_HAL_REPL_UART, 115200);

    for (;;) {
        mp_stack_set_top(&_estack);
        mp_stack_set_limit((char *)&_estack - (char *)&_sstack - STACK_GUARD);
        gc_init(&_heap_start, &_heap_end);
        mp_init();
        readline_init0();
        board_boot_hook();

        for (;;) {
            if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
                if (pyexec_raw_repl() != 0) {
                    break;
                }
            } else {
                if (pyexec_friendly_repl() != 0) {
                    break;
                }
            }
        }

        board_soft_reset_hook();
        machine_uart_deinit_all();
        gc_sweep_all();
        mp_deinit();
        mp_hal_stdout_tx_str("MPY: soft reboot\r\n");
    }
}

void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
}

#if !QEMU_RAMFILE
// No filesystem: only built-in and frozen modules can be imported. (With NATMOD=1,
// ramfile.c answers from its RAM file store.)
mp_import_stat_t mp_import_stat(const char *path) {
    (void)path;
    return MP_IMPORT_STAT_NO_EXIST;
}

mp_lexer_t *mp_lexer_new_from_file(qstr filename) {
    (void)filename;
    mp_raise_OSError(MP_ENOENT);
}
#endif

mp_obj_t mp_builtin_open(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) {
    (void)n_args;
    (void)args;
    (void)kwargs;
    mp_raise_OSError(MP_ENOENT);
}
MP_DEFINE_CONST_FUN_OBJ_KW(mp_builtin_open_obj, 1, mp_builtin_open);

void nlr_jump_fail(void *val) {
    (void)val;
    mp_hal_stdout_tx_str("\r\nFATAL: uncaught NLR\r\n");
    board_semihosting_exit(2);
    for (;;) {
        __asm volatile ("wfi");
    }
}

NORETURN void __fatal_error(const char *msg) {
    mp_hal_stdout_tx_str("\r\nFATAL: ");
    mp_hal_stdout_tx_str(msg);
    mp_hal_stdout_tx_str("\r\n");
    board_semihosting_exit(2);
    for (;;) {
        __asm volatile ("wfi");
    }
}

#ifndef NDEBUG
void MP_WEAK __assert_func(const char *file, int line, const char *func, const char *expr) {
    (void)func;
    mp_printf(&mp_plat_print, "assertion \"%s\" failed: file \"%s\", line %d\n", expr, file, line);
    __fatal_error("assertion failed");
}
#endif
