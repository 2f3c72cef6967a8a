// The emulated board: qemu-system-arm -M mps2-an500 (Cortex-M7, CMSDK peripherals).
#ifndef QEMU_BOARD_H
#define QEMU_BOARD_H

#include <stdbool.h>
#include <stdint.h>

// The CPU and SysTick clock of QEMU's MPS2 model.
#define BOARD_SYSCLK_HZ (25000000u)

#define REG32(addr) (*(volatile uint32_t *)(addr))

// System control space.
#define SYST_CSR   REG32(0xE000E010)
#define SYST_RVR   REG32(0xE000E014)
#define SYST_CVR   REG32(0xE000E018)
#define NVIC_ISER(n) REG32(0xE000E100 + 4 * (n))
#define NVIC_ICER(n) REG32(0xE000E180 + 4 * (n))
#define NVIC_ISPR(n) REG32(0xE000E200 + 4 * (n))
#define SCB_ICSR   REG32(0xE000ED04)
#define SCB_VTOR   REG32(0xE000ED08)
#define SCB_AIRCR  REG32(0xE000ED0C)
#define SCB_CCR    REG32(0xE000ED14)
#define SCB_CCR_UNALIGN_TRP (1u << 3)
#define SCB_CPACR  REG32(0xE000ED88)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_ISRPENDING (1u << 22)

static inline void board_irq_enable(unsigned irq) {
    NVIC_ISER(irq / 32) = 1u << (irq % 32);
}
static inline void board_irq_disable(unsigned irq) {
    NVIC_ICER(irq / 32) = 1u << (irq % 32);
}
static inline void board_irq_pend(unsigned irq) {
    NVIC_ISPR(irq / 32) = 1u << (irq % 32);
}

// Time since boot. board_time_ns() has the resolution of one SysTick count (40 ns); with
// QEMU's -icount shift=0 one instruction takes 1 ns of emulated time.
uint32_t board_ticks_ms(void);
uint64_t board_time_ns(void);
// Emulated nanoseconds spent in qemu_idle() (asleep, waiting for an interrupt).
uint64_t board_idle_ns(void);
// Wait for interrupts by polling instead of WFI (for exact instruction counts; the host
// core then stays busy while the board waits).
void board_set_idle_spin(bool spin);

// End QEMU with an exit code (semihosting SYS_EXIT; QEMU needs -semihosting). Returns
// when semihosting is not enabled.
void board_semihosting_exit(int code);

#endif
