// Configuration of the virtual cam: MicroPython on qemu-system-arm -M mps2-an500 (Cortex-M7).
#include <stdint.h>

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

// Compiler and emitters: scripts arrive over the raw REPL and are compiled on the board.
#define MICROPY_ENABLE_COMPILER           (1)
#define MICROPY_EMIT_THUMB                (1)
#define MICROPY_EMIT_INLINE_THUMB         (1)
#if defined(__ARM_ARCH_6M__)
// BOARD=an385-m0: the emitters keep to Thumb-1 (armv6m).
#define MICROPY_EMIT_THUMB_ARMV7M         (0)
#define MICROPY_EMIT_INLINE_THUMB_FLOAT   (0)
#endif

// The "stock firmware" build (NATMOD=1, make qemu-natmod): no rpc module inside, but
// native modules (.mpy) load from the RAM file store (ramfile.c), like a cam loads them
// from its flash drive. MICROPY_EMIT_THUMB above, built for a Cortex-M7 with a
// single-precision FPU (-mfpu=fpv5-sp-d16 -mfloat-abi=hard), makes the accepted
// architecture armv7emsp (py/persistentcode.h); the loader copies machine code into the
// GC heap, which is executable on this board (no MPU), and keeps it reachable through
// MICROPY_PERSISTENT_CODE_TRACK_RELOC_CODE (on by default here).
#if QEMU_RAMFILE
#define MICROPY_PERSISTENT_CODE_LOAD      (1)
#define MICROPY_HAS_FILE_READER           (1)
#else
#define MICROPY_PERSISTENT_CODE_LOAD      (0)
#endif

// Memory.
#define MICROPY_ENABLE_GC                 (1)
#define MICROPY_ALLOC_PATH_MAX            (128)
#define MICROPY_STACK_CHECK               (1)
#define MICROPY_ENABLE_EMERGENCY_EXCEPTION_BUF (1)
#define MICROPY_EMERGENCY_EXCEPTION_BUF_SIZE (256)
#define MICROPY_GCREGS_SETJMP             (0)

// Numbers: the OpenMV H7 has a single-precision FPU.
#define MICROPY_LONGINT_IMPL              (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_FLOAT_IMPL                (MICROPY_FLOAT_IMPL_FLOAT)

// REPL on UART0, with Ctrl-C raising KeyboardInterrupt.
#define MICROPY_HELPER_REPL               (1)
#define MICROPY_REPL_AUTO_INDENT          (1)
#define MICROPY_KBD_EXCEPTION             (1)
#define MICROPY_ENABLE_SCHEDULER          (1)
#define MICROPY_SCHEDULER_DEPTH           (8)

// Imports: frozen modules (no filesystem), and files in RAM with NATMOD=1.
#define MICROPY_ENABLE_EXTERNAL_IMPORT    (1)
#define MICROPY_READER_VFS                (0)
#define MICROPY_VFS                       (0)

// Core modules. The pinned core has no extmod/: this port provides time, select and
// machine itself (modtime.c, modselect.c, modmachine.c) and leaves the rest out.
#ifndef QEMU_MACHINE
#define QEMU_MACHINE "mps2-an500"
#endif
#define MICROPY_PY_SYS_PLATFORM           QEMU_MACHINE
#define MICROPY_PY_SYS_STDFILES           (1)
#define MICROPY_PY_SYS_STDIO_BUFFER       (1)
#define MICROPY_PY_SYS_MAXSIZE            (1)
#define MICROPY_PY_MICROPYTHON_MEM_INFO   (1)
#define MICROPY_PY_BUILTINS_HELP          (1)
#define MICROPY_PY_BUILTINS_HELP_MODULES  (1)
#define MICROPY_PY_BUILTINS_MEMORYVIEW    (1)
#define MICROPY_PY_BUILTINS_NEXT2         (1)
#define MICROPY_PY_ARRAY_SLICE_ASSIGN     (1)
#define MICROPY_PY_IO                     (1)
#define MICROPY_PY_TIME                   (0)
#define MICROPY_PY_SELECT                 (0)
#define MICROPY_PY_OS                     (0)
#define MICROPY_PY_MACHINE                (0)
#define MICROPY_PY_RANDOM                 (0)
#define MICROPY_PY_JSON                   (0)
#define MICROPY_PY_RE                     (0)
#define MICROPY_PY_HEAPQ                  (0)
#define MICROPY_PY_HASHLIB                (0)
#define MICROPY_PY_BINASCII               (0)
#define MICROPY_PY_DEFLATE                (0)
#define MICROPY_PY_UCTYPES                (0)
#define MICROPY_PY_ASYNCIO                (0)
#define MICROPY_PY_FRAMEBUF               (0)
#define MICROPY_PY_PLATFORM               (0)
#define MICROPY_PY_ERRNO                  (1)

// The board.
#define MICROPY_HW_BOARD_NAME             "omv-rpc virtual cam (qemu " QEMU_MACHINE ")"
#ifndef QEMU_MCU_NAME
#define QEMU_MCU_NAME "Cortex-M7"
#endif
#define MICROPY_HW_MCU_NAME               QEMU_MCU_NAME

#define MP_SSIZE_MAX                      (0x7fffffff)
typedef int32_t mp_int_t;
typedef uint32_t mp_uint_t;
typedef long mp_off_t;

#define MICROPY_MAKE_POINTER_CALLABLE(p)  ((void *)((mp_uint_t)(p) | 1))
#define MP_STATE_PORT MP_STATE_VM

// Interrupt masking, used by the scheduler, by machine.disable_irq and by the atomic
// sections that the mutex module relies on.
#include "irq.h"
#define MICROPY_BEGIN_ATOMIC_SECTION()    qemu_irq_disable()
#define MICROPY_END_ATOMIC_SECTION(state) qemu_irq_restore(state)

// Waiting (mp_event_wait_ms / mp_event_wait_indefinite): sleep until the next interrupt,
// SysTick (1 ms) or a UART receive.
#define MICROPY_INTERNAL_WFE(TIMEOUT_MS)  qemu_idle()

#include <alloca.h>
