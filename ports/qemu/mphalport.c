// Time, stdio and semihosting for the virtual cam.
#include <string.h>

#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stream.h"

#include "board.h"
#include "cmsdk_uart.h"

#define SYSTICK_COUNTS_PER_MS (BOARD_SYSCLK_HZ / 1000u)
#define NS_PER_SYSTICK_COUNT (1000000000u / BOARD_SYSCLK_HZ)

static volatile uint32_t ticks_ms;
static volatile uint64_t idle_ns;

// Hooks for a module that needs the port's tick, stdio and boot (Protocol V2,
// protocol/mp/modprotocol.c); these defaults do nothing.
MP_WEAK void board_systick_hook(uint32_t ms) {
    (void)ms;
}
MP_WEAK bool board_stdin_idle_hook(void) {
    return false;
}
MP_WEAK void board_stdout_hook(const char *str, size_t len) {
    (void)str;
    (void)len;
}

void SysTick_Handler(void) {
    ticks_ms = ticks_ms + 1;
    board_systick_hook(ticks_ms);
}

void board_systick_init(void) {
    SYST_RVR = SYSTICK_COUNTS_PER_MS - 1;
    SYST_CVR = 0;
    // Processor clock, interrupt on, counter on.
    SYST_CSR = 0x7;
}

uint32_t board_ticks_ms(void) {
    return ticks_ms;
}

// Milliseconds and the SysTick counts elapsed in the current millisecond, read
// consistently even when the counter wraps while we look.
static void board_time_parts(uint32_t *ms, uint32_t *counts) {
    uint32_t state = qemu_irq_disable();
    uint32_t m = ticks_ms;
    uint32_t val = SYST_CVR;
    if ((SCB_ICSR & SCB_ICSR_PENDSTSET) && val > SYSTICK_COUNTS_PER_MS / 2) {
        // Wrapped after the interrupt was masked: the tick is pending, not yet counted.
        m += 1;
    }
    qemu_irq_restore(state);
    *ms = m;
    *counts = SYSTICK_COUNTS_PER_MS - 1 - val;
}

uint64_t board_time_ns(void) {
    uint32_t ms, counts;
    board_time_parts(&ms, &counts);
    return (uint64_t)ms * 1000000u + (uint64_t)counts * NS_PER_SYSTICK_COUNT;
}

uint64_t board_idle_ns(void) {
    uint32_t state = qemu_irq_disable();
    uint64_t ns = idle_ns;
    qemu_irq_restore(state);
    return ns;
}

static bool idle_spin;

void board_set_idle_spin(bool spin) {
    idle_spin = spin;
}

void qemu_idle(void) {
    // Interrupts stay masked across the measurement so that the handler that wakes us
    // runs after it, and counts as busy time. WFI still wakes on a pending interrupt.
    uint32_t state = qemu_irq_disable();
    uint64_t start = board_time_ns();
    if (idle_spin) {
        // Wait by polling for a pending interrupt instead: under -icount the emulated time
        // then counts exactly the instructions run, where a WFI lets QEMU add the real time
        // slept at a moment of its choosing, sometimes after we looked.
        // The pause between looks keeps QEMU's slow register accesses from holding the
        // emulated clock back; its instructions are idle time like the rest of the wait.
        while (!(SCB_ICSR & (SCB_ICSR_ISRPENDING | SCB_ICSR_PENDSTSET))) {
            for (volatile uint32_t i = 0; i < 256; ++i) {
            }
        }
    } else {
        __asm volatile ("wfi");
    }
    idle_ns += board_time_ns() - start;
    qemu_irq_restore(state);
}

void board_semihosting_exit(int code) {
    // SYS_EXIT_EXTENDED (0x20): on A32 plain SYS_EXIT carries no exit code. The block is
    // ADP_Stopped_ApplicationExit and the code.
    uint32_t block[2] = {0x20026, (uint32_t)code};
    register uint32_t r0 __asm__ ("r0") = 0x20;
    register uint32_t *r1 __asm__ ("r1") = block;
    __asm volatile ("bkpt 0xab" : "+r" (r0) : "r" (r1) : "memory");
}

mp_uint_t mp_hal_ticks_ms(void) {
    return ticks_ms;
}

mp_uint_t mp_hal_ticks_us(void) {
    uint32_t ms, counts;
    board_time_parts(&ms, &counts);
    return ms * 1000u + counts / (SYSTICK_COUNTS_PER_MS / 1000u);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)(board_time_ns() / NS_PER_SYSTICK_COUNT);
}

uint64_t mp_hal_time_ns(void) {
    return board_time_ns();
}

void mp_hal_delay_ms(mp_uint_t ms) {
    uint32_t start = mp_hal_ticks_ms();
    while (mp_hal_ticks_ms() - start < ms) {
        mp_event_wait_ms(1);
    }
}

void mp_hal_delay_us(mp_uint_t us) {
    if (us >= 1000) {
        mp_hal_delay_ms(us / 1000);
        us %= 1000;
    }
    uint32_t start = mp_hal_ticks_us();
    while (mp_hal_ticks_us() - start < us) {
    }
}

// stdio on UART0.

uintptr_t mp_hal_stdio_poll(uintptr_t poll_flags) {
    uintptr_t ret = 0;
    if ((poll_flags & MP_STREAM_POLL_RD) && uart_rx_any(MP_HAL_REPL_UART)) {
        ret |= MP_STREAM_POLL_RD;
    }
    if ((poll_flags & MP_STREAM_POLL_WR) && uart_tx_ready(MP_HAL_REPL_UART)) {
        ret |= MP_STREAM_POLL_WR;
    }
    return ret;
}

int mp_hal_stdin_rx_chr(void) {
    for (;;) {
        int c = uart_rx_char(MP_HAL_REPL_UART);
        if (c >= 0) {
            return c;
        }
        if (board_stdin_idle_hook()) {
            continue;
        }
        mp_event_wait_indefinite();
    }
}

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len) {
    board_stdout_hook(str, len);
    // The console never gives up: a pty nobody reads is drained by QEMU itself.
    return uart_tx_write(MP_HAL_REPL_UART, (const uint8_t *)str, len, UINT32_MAX);
}
