// Interrupt masking and idling on the Cortex-M7 of the virtual cam.
#ifndef QEMU_IRQ_H
#define QEMU_IRQ_H

#include <stdint.h>

// Mask every configurable interrupt (PRIMASK) and return the previous state.
static inline uint32_t qemu_irq_disable(void) {
    uint32_t state;
    __asm volatile ("mrs %0, primask\n cpsid i" : "=r" (state) : : "memory");
    return state;
}

static inline void qemu_irq_restore(uint32_t state) {
    __asm volatile ("msr primask, %0" : : "r" (state) : "memory");
}

// Sleep until the next interrupt (SysTick every millisecond, or a UART receive) and
// account the time spent asleep, so that busy time can be told from idle time.
void qemu_idle(void);

#endif
