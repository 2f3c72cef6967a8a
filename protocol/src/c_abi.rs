//! The device role for C (the cam's glue): one instance in static storage, since a cam has one
//! Protocol V2 link. Declared in include/omv_protocol_v2.h. Every function returns at once.
#![allow(clippy::missing_safety_doc)]

use crate::device::{Action, Config, Device, Request};
use crate::wire::Status;
use core::ptr::addr_of_mut;

#[repr(C)]
pub struct OmvpConfig {
    pub crc: u8,
    pub seq: u8,
    pub ack: u8,
    pub events: u8,
    pub max_payload: u16,
    pub rtx_retries: u16,
    pub rtx_timeout_ms: u32,
    pub version: [u8; 9],
}

/// What `omvp_poll` asks for. `kind`: OMVP_IDLE 0, OMVP_TRANSMIT 1 (data, len), OMVP_REQUEST 2
/// (request, channel, offset, length, cmd; data/len: a write's data or an ioctl's argument),
/// OMVP_MORE 3, OMVP_RESET 4.
#[repr(C)]
pub struct OmvpAction {
    pub kind: u32,
    pub request: u32,
    pub channel: u32,
    pub offset: u32,
    pub length: u32,
    pub cmd: u32,
    pub data: *const u8,
    pub len: usize,
}

// Request numbers (OMVP_RQ_*), the firmware's opcodes.
fn request_code(r: &Request) -> u32 {
    use crate::wire::opcode::*;
    (match r {
        Request::SysReset => SYS_RESET,
        Request::SysBoot => SYS_BOOT,
        Request::SysInfo => SYS_INFO,
        Request::SysMemory => SYS_MEMORY,
        Request::ChannelList => CHANNEL_LIST,
        Request::ChannelPoll => CHANNEL_POLL,
        Request::Lock { .. } => CHANNEL_LOCK,
        Request::Unlock { .. } => CHANNEL_UNLOCK,
        Request::Shape { .. } => CHANNEL_SHAPE,
        Request::Size { .. } => CHANNEL_SIZE,
        Request::Read { .. } => CHANNEL_READ,
        Request::Write { .. } => CHANNEL_WRITE,
        Request::Ioctl { .. } => CHANNEL_IOCTL,
    }) as u32
}

static mut DEVICE: Option<Device> = None;

fn device() -> Option<&'static mut Device> {
    // SAFETY: the cam's glue calls in from one context at a time (its protocol task).
    unsafe { (*addr_of_mut!(DEVICE)).as_mut() }
}

#[no_mangle]
pub unsafe extern "C" fn omvp_init(cfg: *const OmvpConfig) {
    let c = &*cfg;
    let config = Config {
        crc: c.crc != 0,
        seq: c.seq != 0,
        ack: c.ack != 0,
        events: c.events != 0,
        max_payload: c.max_payload.clamp(crate::wire::MIN_PAYLOAD_SIZE, crate::wire::MAX_PAYLOAD_SIZE),
        rtx_retries: c.rtx_retries,
        rtx_timeout_ms: c.rtx_timeout_ms,
        version: c.version,
    };
    let slot = &mut *addr_of_mut!(DEVICE);
    match slot {
        Some(d) => *d = Device::new(config),
        None => *slot = Some(Device::new(config)),
    }
}

#[no_mangle]
pub unsafe extern "C" fn omvp_receive(buf: *const u8, len: usize) -> usize {
    match device() {
        Some(d) if len > 0 => d.receive(core::slice::from_raw_parts(buf, len)),
        _ => 0,
    }
}

#[no_mangle]
pub extern "C" fn omvp_rx_free() -> usize {
    device().map_or(0, |d| d.rx_free())
}

#[no_mangle]
pub unsafe extern "C" fn omvp_poll(now_ms: u64, out: *mut OmvpAction) -> u32 {
    let o = &mut *out;
    *o = OmvpAction { kind: 0, request: 0, channel: 0, offset: 0, length: 0, cmd: 0, data: core::ptr::null(), len: 0 };
    let Some(d) = device() else { return 0 };
    match d.poll(now_ms) {
        Action::Idle => {}
        Action::Transmit(b) => {
            o.kind = 1;
            o.data = b.as_ptr();
            o.len = b.len();
        }
        Action::More => o.kind = 3,
        Action::Reset => o.kind = 4,
        Action::Request(r) => {
            o.kind = 2;
            o.request = request_code(&r);
            match r {
                Request::Lock { channel } | Request::Unlock { channel } | Request::Shape { channel } | Request::Size { channel } => {
                    o.channel = channel as u32
                }
                Request::Read { channel, offset, length } => {
                    o.channel = channel as u32;
                    o.offset = offset;
                    o.length = length;
                }
                Request::Write { channel, offset, data } => {
                    o.channel = channel as u32;
                    o.offset = offset;
                    o.length = data.len() as u32;
                    o.data = data.as_ptr();
                    o.len = data.len();
                }
                Request::Ioctl { channel, cmd, arg } => {
                    o.channel = channel as u32;
                    o.cmd = cmd;
                    o.data = arg.as_ptr();
                    o.len = arg.len();
                }
                _ => {}
            }
        }
    }
    o.kind
}

/// Returns the bytes taken (at most omvp_max_payload()), or -1 when no answer is expected.
#[no_mangle]
pub unsafe extern "C" fn omvp_respond(data: *const u8, len: usize, more: bool) -> i32 {
    let Some(d) = device() else { return -1 };
    let s = if len == 0 { &[][..] } else { core::slice::from_raw_parts(data, len) };
    d.respond(s, more).map_or(-1, |n| n as i32)
}

#[no_mangle]
pub extern "C" fn omvp_respond_status(status: u16) -> i32 {
    let Some(d) = device() else { return -1 };
    d.respond_status(Status::from_u16(status)).map_or(-1, |_| 0)
}

/// 0 sent (queued for the next OMVP_TRANSMIT), -1 events off, -2 busy (try again later).
#[no_mangle]
pub extern "C" fn omvp_send_event(channel: u8, event: u16, wait_ack: bool) -> i32 {
    let Some(d) = device() else { return -1 };
    match d.send_event(channel, event, wait_ack) {
        Ok(()) => 0,
        Err(crate::device::ApiError::Disabled) => -1,
        Err(_) => -2,
    }
}

#[no_mangle]
pub extern "C" fn omvp_max_payload() -> u32 {
    device().map_or(0, |d| d.max_payload() as u32)
}

/// The next ACK deadline in ms, or -1.
#[no_mangle]
pub extern "C" fn omvp_poll_timeout() -> i64 {
    device().and_then(|d| d.poll_timeout()).map_or(-1, |t| t as i64)
}

/// The PROTO_STATS counters, in their wire order.
#[no_mangle]
pub unsafe extern "C" fn omvp_stats(out: *mut u32) {
    if let Some(d) = device() {
        let s = d.stats();
        let v = [s.sent_packets, s.recv_packets, s.checksum_errors, s.sequence_errors, s.retransmit,
                 s.transport_errors, s.sent_events, s.reserved];
        for (i, x) in v.iter().enumerate() {
            *out.add(i) = *x;
        }
    }
}
