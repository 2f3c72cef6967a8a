// The Protocol V2 device role (protocol/src/c_abi.rs): one instance, sans-IO. omvp_poll says
// what to do next; bytes in with omvp_receive; answers with omvp_respond / omvp_respond_status.
#ifndef OMV_PROTOCOL_V2_H
#define OMV_PROTOCOL_V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t crc, seq, ack, events;
    uint16_t max_payload;
    uint16_t rtx_retries;
    uint32_t rtx_timeout_ms;
    uint8_t version[9];     // protocol, bootloader, firmware (major, minor, patch each)
} omvp_config_t;

enum { OMVP_IDLE = 0, OMVP_TRANSMIT = 1, OMVP_REQUEST = 2, OMVP_MORE = 3, OMVP_RESET = 4 };

// Requests carry the opcode they came with.
enum {
    OMVP_RQ_SYS_RESET = 0x10, OMVP_RQ_SYS_BOOT = 0x11, OMVP_RQ_SYS_INFO = 0x12, OMVP_RQ_SYS_MEMORY = 0x14,
    OMVP_RQ_CHANNEL_LIST = 0x20, OMVP_RQ_CHANNEL_POLL = 0x21, OMVP_RQ_CHANNEL_LOCK = 0x22,
    OMVP_RQ_CHANNEL_UNLOCK = 0x23, OMVP_RQ_CHANNEL_SHAPE = 0x24, OMVP_RQ_CHANNEL_SIZE = 0x25,
    OMVP_RQ_CHANNEL_READ = 0x26, OMVP_RQ_CHANNEL_WRITE = 0x27, OMVP_RQ_CHANNEL_IOCTL = 0x28,
};

enum {
    OMVP_STATUS_SUCCESS = 0, OMVP_STATUS_FAILED = 1, OMVP_STATUS_INVALID = 2, OMVP_STATUS_BUSY = 4,
};

typedef struct {
    uint32_t kind;
    uint32_t request;
    uint32_t channel;
    uint32_t offset;
    uint32_t length;
    uint32_t cmd;
    const uint8_t *data;    // OMVP_TRANSMIT: the bytes; a write's data; an ioctl's argument
    size_t len;
} omvp_action_t;

void omvp_init(const omvp_config_t *cfg);
size_t omvp_receive(const uint8_t *buf, size_t len);
size_t omvp_rx_free(void);
uint32_t omvp_poll(uint64_t now_ms, omvp_action_t *out);
int32_t omvp_respond(const uint8_t *data, size_t len, bool more);
int32_t omvp_respond_status(uint16_t status);
int32_t omvp_send_event(uint8_t channel, uint16_t event, bool wait_ack);
uint32_t omvp_max_payload(void);
int64_t omvp_poll_timeout(void);
void omvp_stats(uint32_t out[8]);

#endif
