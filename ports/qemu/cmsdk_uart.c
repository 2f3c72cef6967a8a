// CMSDK APB UART driver. QEMU's model has a one-byte receive register and holds further
// input back until the register is read, so a byte is only ever lost if software drops it.
// The receive interrupt drains the register into a ring buffer; when the ring is full the
// interrupt is switched off and the byte stays in the UART (QEMU then stops reading the
// host side), until a reader makes room.
#include <string.h>

#include "py/mpconfig.h"
#include "py/runtime.h"
#include "shared/runtime/interrupt_char.h"

#include "board.h"
#include "cmsdk_uart.h"
#include "irq.h"

#define UART_DATA      (0x00)
#define UART_STATE     (0x04)
#define UART_CTRL      (0x08)
#define UART_INTSTATUS (0x0c)
#define UART_BAUDDIV   (0x10)

#define STATE_TX_FULL  (1u << 0)
#define STATE_RX_FULL  (1u << 1)
#define CTRL_TX_EN     (1u << 0)
#define CTRL_RX_EN     (1u << 1)
#define CTRL_RX_INTEN  (1u << 3)
#define INT_RX         (1u << 1)

#define UART_REG(u, off) REG32((u)->base + (off))

typedef struct _uart_t {
    uint32_t base;
    uint8_t irq_rx;
    bool enabled;
    volatile bool rx_stalled;  // ring was full: receive interrupt off, byte left in the UART
    uint32_t baudrate;
    volatile uint32_t rx_head; // written by the interrupt
    volatile uint32_t rx_tail; // written by the reader
    uint8_t *rx_ring;
} uart_t;

static uint8_t rx_ring_storage[UART_COUNT][UART_RX_RING_SIZE];

static uart_t uarts[UART_COUNT] = {
    {.base = 0x40004000, .irq_rx = 0, .rx_ring = rx_ring_storage[0]},
    {.base = 0x40005000, .irq_rx = 2, .rx_ring = rx_ring_storage[1]},
    {.base = 0x40006000, .irq_rx = 4, .rx_ring = rx_ring_storage[2]},
    {.base = 0x40007000, .irq_rx = 18, .rx_ring = rx_ring_storage[3]},
    {.base = 0x40009000, .irq_rx = 20, .rx_ring = rx_ring_storage[4]},
};

static inline size_t ring_used(const uart_t *u) {
    return (u->rx_head - u->rx_tail) & (UART_RX_RING_SIZE - 1);
}

static inline size_t ring_free(const uart_t *u) {
    return UART_RX_RING_SIZE - 1 - ring_used(u);
}

void uart_init(unsigned id, uint32_t baudrate) {
    uart_t *u = &uarts[id];
    board_irq_disable(u->irq_rx);
    uint32_t bauddiv = BOARD_SYSCLK_HZ / (baudrate ? baudrate : 1);
    if (bauddiv < 16) {
        bauddiv = 16;
    }
    UART_REG(u, UART_CTRL) = 0;
    UART_REG(u, UART_BAUDDIV) = bauddiv;
    u->baudrate = baudrate;
    u->rx_head = u->rx_tail = 0;
    u->rx_stalled = false;
    UART_REG(u, UART_INTSTATUS) = 0xf;
    UART_REG(u, UART_CTRL) = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
    u->enabled = true;
    board_irq_enable(u->irq_rx);
    // A byte may already wait in the receive register from before: fetch it.
    board_irq_pend(u->irq_rx);
}

void uart_deinit(unsigned id) {
    uart_t *u = &uarts[id];
    board_irq_disable(u->irq_rx);
    UART_REG(u, UART_CTRL) = 0;
    u->enabled = false;
}

bool uart_is_enabled(unsigned id) {
    return uarts[id].enabled;
}

uint32_t uart_baudrate(unsigned id) {
    return uarts[id].baudrate;
}

static void uart_rx_irq(uart_t *u, bool interrupt_char) {
    UART_REG(u, UART_INTSTATUS) = INT_RX;
    while (UART_REG(u, UART_STATE) & STATE_RX_FULL) {
        if (ring_free(u) == 0) {
            UART_REG(u, UART_CTRL) &= ~CTRL_RX_INTEN;
            u->rx_stalled = true;
            return;
        }
        uint8_t c = UART_REG(u, UART_DATA);
        if (interrupt_char && c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
            continue;
        }
        u->rx_ring[u->rx_head] = c;
        u->rx_head = (u->rx_head + 1) & (UART_RX_RING_SIZE - 1);
    }
}

void uart0_rx_handler(void) {
    uart_rx_irq(&uarts[0], true);
}
void uart1_rx_handler(void) {
    uart_rx_irq(&uarts[1], false);
}
void uart2_rx_handler(void) {
    uart_rx_irq(&uarts[2], false);
}
void uart3_rx_handler(void) {
    uart_rx_irq(&uarts[3], false);
}
void uart4_rx_handler(void) {
    uart_rx_irq(&uarts[4], false);
}

// After a read made room: let the interrupt take the byte it left in the UART.
static void uart_rx_resume(uart_t *u) {
    if (u->rx_stalled) {
        uint32_t state = qemu_irq_disable();
        u->rx_stalled = false;
        UART_REG(u, UART_CTRL) |= CTRL_RX_INTEN;
        board_irq_pend(u->irq_rx);
        qemu_irq_restore(state);
    }
}

size_t uart_rx_any(unsigned id) {
    return ring_used(&uarts[id]);
}

int uart_rx_char(unsigned id) {
    uart_t *u = &uarts[id];
    if (ring_used(u) == 0) {
        return -1;
    }
    int c = u->rx_ring[u->rx_tail];
    u->rx_tail = (u->rx_tail + 1) & (UART_RX_RING_SIZE - 1);
    uart_rx_resume(u);
    return c;
}

size_t uart_rx_read(unsigned id, uint8_t *buf, size_t len) {
    uart_t *u = &uarts[id];
    size_t done = 0;
    while (done < len) {
        size_t used = ring_used(u);
        if (used == 0) {
            break;
        }
        // Copy the contiguous part up to the end of the ring, then wrap.
        size_t run = UART_RX_RING_SIZE - u->rx_tail;
        if (run > used) {
            run = used;
        }
        if (run > len - done) {
            run = len - done;
        }
        memcpy(buf + done, u->rx_ring + u->rx_tail, run);
        u->rx_tail = (u->rx_tail + run) & (UART_RX_RING_SIZE - 1);
        done += run;
    }
    if (done) {
        uart_rx_resume(u);
    }
    return done;
}

bool uart_tx_ready(unsigned id) {
    uart_t *u = &uarts[id];
    return !(UART_REG(u, UART_STATE) & STATE_TX_FULL);
}

size_t uart_tx_write(unsigned id, const uint8_t *buf, size_t len, uint32_t timeout_ms) {
    uart_t *u = &uarts[id];
    for (size_t i = 0; i < len; ++i) {
        if (UART_REG(u, UART_STATE) & STATE_TX_FULL) {
            uint32_t start = board_ticks_ms();
            while (UART_REG(u, UART_STATE) & STATE_TX_FULL) {
                if (board_ticks_ms() - start > timeout_ms) {
                    return i;
                }
            }
        }
        UART_REG(u, UART_DATA) = buf[i];
    }
    return len;
}

bool uart_tx_done(unsigned id) {
    return uart_tx_ready(id);
}
