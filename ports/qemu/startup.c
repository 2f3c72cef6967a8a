// Reset, vector table and fault handlers of the virtual cam.
#include <stdint.h>
#include <string.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void SysTick_Handler(void);
void uart0_rx_handler(void);
void uart1_rx_handler(void);
void uart2_rx_handler(void);
void uart3_rx_handler(void);
void uart4_rx_handler(void);

void Reset_Handler(void) __attribute__((noreturn));
void Reset_Handler(void) {
    // The core loaded SP from the vector table. The FPU (CP10 and CP11 full access) before
    // any C code may use it; BOARD=an385 (Cortex-M3) has none.
    #if defined(__ARM_FP)
    SCB_CPACR |= (0xfu << 20);
    #endif
    #if defined(__ARM_ARCH_6M__)
    // BOARD=an385-m0 (M0 code on QEMU's M3): unaligned loads and stores fault, as on an M0.
    SCB_CCR |= SCB_CCR_UNALIGN_TRP;
    #endif
    __asm volatile ("dsb\n isb");
    memcpy(&_sdata, &_sidata, (char *)&_edata - (char *)&_sdata);
    memset(&_sbss, 0, (char *)&_ebss - (char *)&_sbss);
    main();
    for (;;) {
        __asm volatile ("wfi");
    }
}

static void fault_stop(const char *what) {
    // Last words on UART0 without the driver (it may be the cause), then stop QEMU.
    volatile uint32_t *uart0 = (volatile uint32_t *)0x40004000;
    for (const char *p = what; *p; ++p) {
        while (uart0[1] & 1) {
        }
        uart0[0] = (uint8_t)*p;
    }
    board_semihosting_exit(3);
    for (;;) {
        __asm volatile ("wfi");
    }
}

// A semihosting call (BKPT 0xAB) made while QEMU runs without -semihosting escalates to
// HardFault: step over it and return -1 in r0, so that exit() just returns then.
void HardFault_C(uint32_t *frame) {
    uint16_t *pc = (uint16_t *)frame[6];
    if (*pc == 0xbeab) {
        frame[0] = (uint32_t)-1;
        frame[6] += 2;
        return;
    }
    fault_stop("\r\nFATAL: HardFault\r\n");
}

void HardFault_Handler(void) __attribute__((naked));
void HardFault_Handler(void) {
    #if defined(__ARM_ARCH_6M__)
    __asm volatile (
        "movs r0, #4\n"
        "mov r1, lr\n"
        "tst r0, r1\n"
        "bne 1f\n"
        "mrs r0, msp\n"
        "b HardFault_C\n"
        "1:\n"
        "mrs r0, psp\n"
        "b HardFault_C\n"
        );
    #else
    __asm volatile (
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b HardFault_C\n"
        );
    #endif
}

static void Default_Handler(void) {
    fault_stop("\r\nFATAL: unexpected exception\r\n");
}

static void NMI_Handler(void) {
    fault_stop("\r\nFATAL: NMI\r\n");
}

static void MemManage_Handler(void) {
    fault_stop("\r\nFATAL: MemManage\r\n");
}

static void BusFault_Handler(void) {
    fault_stop("\r\nFATAL: BusFault\r\n");
}

static void UsageFault_Handler(void) {
    fault_stop("\r\nFATAL: UsageFault\r\n");
}

// External interrupt numbers of the UART receive lines in QEMU's MPS2 AN385/AN500 model
// (the transmit line of each is one higher).
#define VECTOR_COUNT (16 + 32)
typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used))
const vector_t isr_vector[VECTOR_COUNT] = {
    [0] = (vector_t)&_estack,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [7 ... 10] = Default_Handler,
    [11] = Default_Handler,      // SVCall
    [12] = Default_Handler,      // DebugMonitor
    [13] = Default_Handler,
    [14] = Default_Handler,      // PendSV
    [15] = SysTick_Handler,
    [16 ... VECTOR_COUNT - 1] = Default_Handler,
    [16 + 0] = uart0_rx_handler,
    [16 + 2] = uart1_rx_handler,
    [16 + 4] = uart2_rx_handler,
    [16 + 18] = uart3_rx_handler,
    [16 + 20] = uart4_rx_handler,
};
