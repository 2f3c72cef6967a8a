// Driver for the CMSDK APB UARTs of the MPS2 board: interrupt-driven receive into a ring
// buffer per UART, polled transmit.
#ifndef QEMU_CMSDK_UART_H
#define QEMU_CMSDK_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_COUNT (5)        // UART0 (the REPL) to UART4
#define UART_RX_RING_SIZE (8192)

void uart_init(unsigned id, uint32_t baudrate);
void uart_deinit(unsigned id);
bool uart_is_enabled(unsigned id);
// The baud rate asked for (QEMU does not pace bytes by it).
uint32_t uart_baudrate(unsigned id);

// Receive side (never blocks).
size_t uart_rx_any(unsigned id);
int uart_rx_char(unsigned id);                          // -1 when nothing is buffered
size_t uart_rx_read(unsigned id, uint8_t *buf, size_t len);

// Transmit side: waits for room in the transmit register, at most timeout_ms per byte
// (a host that stops reading its pty makes QEMU hold the byte). Returns the bytes sent.
bool uart_tx_ready(unsigned id);
size_t uart_tx_write(unsigned id, const uint8_t *buf, size_t len, uint32_t timeout_ms);
// Waits until the last byte has left the transmit register.
bool uart_tx_done(unsigned id);

#endif
