//! Shared by the tests: the recorded vectors and a device application like the one the
//! recorder's scripted cam is (tests/protocol/record_vectors.py).
#![allow(dead_code)]

use omv_protocol::device::{answer, Action, Config, Device, Request};
use omv_protocol::wire::Status;

pub const VECTORS: &str = include_str!("../../vectors/openmv-1.0.7.txt");

pub fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub struct PacketVector {
    pub name: String,
    pub seq: u8,
    pub chan: u8,
    pub flags: u8,
    pub opcode: u8,
    pub crc: bool,
    pub payload: Vec<u8>,
    pub bytes: Vec<u8>,
}

pub fn packets() -> Vec<PacketVector> {
    VECTORS
        .lines()
        .filter(|l| l.starts_with("packet "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            PacketVector {
                name: f[1].into(),
                seq: f[2].parse().unwrap(),
                chan: f[3].parse().unwrap(),
                flags: f[4].parse().unwrap(),
                opcode: f[5].parse().unwrap(),
                crc: f[6] == "1",
                payload: hex(f[7]),
                bytes: hex(f[8]),
            }
        })
        .collect()
}

/// (true for host, bytes) in order.
pub fn conversation() -> Vec<(bool, Vec<u8>)> {
    VECTORS
        .lines()
        .filter_map(|l| {
            let (who, h) = l.split_once(' ')?;
            match who {
                "host" => Some((true, hex(h))),
                "device" => Some((false, hex(h))),
                _ => None,
            }
        })
        .collect()
}

pub fn device_config() -> Config {
    Config { max_payload: 4082, ..Config::default() }
}

/// The scripted cam's channels and answers.
pub struct App {
    pub stdin: Vec<u8>,
    pub stdout: Vec<u8>,
    pub custom: Vec<u8>,
    /// The rest of a CHANNEL_READ answer.
    pub reading: Vec<u8>,
}

impl App {
    pub fn new() -> App {
        App { stdin: Vec::new(), stdout: Vec::new(), custom: Vec::new(), reading: Vec::new() }
    }

    fn send_piece(&mut self, d: &mut Device) {
        let step = 512.min(d.max_payload());
        let n = step.min(self.reading.len());
        let piece: Vec<u8> = self.reading.drain(..n).collect();
        let more = !self.reading.is_empty();
        assert_eq!(d.respond(&piece, more).unwrap(), n);
    }

    /// Polls the device until it is idle; returns what it transmitted.
    pub fn run(&mut self, d: &mut Device, now: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let req = match d.poll(now) {
                Action::Idle => return out,
                Action::Transmit(b) => {
                    out.extend_from_slice(b);
                    continue;
                }
                Action::Reset => {
                    self.reading.clear();
                    continue;
                }
                Action::More => {
                    self.send_piece(d);
                    continue;
                }
                Action::Request(r) => req_owned(r),
            };
            self.answer(d, req);
        }
    }

    fn answer(&mut self, d: &mut Device, r: OwnedRequest) {
        match r {
            OwnedRequest::ChannelList => {
                let mut e = Vec::new();
                for (i, f, n) in [(1u8, 0x06u8, &b"stdin"[..]), (2, 0x01, b"stdout"), (3, 0x19, b"stream"), (5, 0x23, b"rpc")] {
                    e.extend_from_slice(&answer::channel_entry(i, f, n));
                }
                d.respond(&e, false).unwrap();
            }
            OwnedRequest::SysInfo => {
                let w: [u32; 19] =
                    [0x411FC271, 1, 2, 3, 0x37C21234, 0x7725, 0, 0, 0, 0, 0x10, 0, 2048, 1024, 400, 64, 0, 0, 0];
                let b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                d.respond(&b, false).unwrap();
            }
            OwnedRequest::Ioctl(chan, cmd) => {
                if chan == 1 && cmd == 3 {
                    self.stdin.clear();
                }
                if chan == 1 && cmd == 2 {
                    self.stdout = b"hello from the cam\n".to_vec();
                }
                d.respond_status(Status::Success).unwrap();
            }
            OwnedRequest::Write(chan, off, data) => {
                let buf = if chan == 1 { &mut self.stdin } else { &mut self.custom };
                let end = off as usize + data.len();
                if buf.len() < end {
                    buf.resize(end, 0);
                }
                buf[off as usize..end].copy_from_slice(&data);
                d.respond_status(Status::Success).unwrap();
            }
            OwnedRequest::Size(chan) => {
                let n = if chan == 2 { self.stdout.len() } else { self.custom.len() } as u32;
                d.respond(&n.to_le_bytes(), false).unwrap();
            }
            OwnedRequest::Read(chan, off, len) => {
                let src = if chan == 2 { &self.stdout } else { &self.custom };
                let a = (off as usize).min(src.len());
                let b = (off as usize + len as usize).min(src.len());
                self.reading = src[a..b].to_vec();
                if self.reading.is_empty() {
                    d.respond_status(Status::Failed).unwrap();
                } else {
                    self.send_piece(d);
                }
            }
            OwnedRequest::Poll => {
                d.respond(&(1u32 << 5).to_le_bytes(), false).unwrap();
            }
            OwnedRequest::Other => d.respond_status(Status::Invalid).unwrap(),
        }
    }
}

pub enum OwnedRequest {
    ChannelList,
    SysInfo,
    Ioctl(u8, u32),
    Write(u8, u32, Vec<u8>),
    Size(u8),
    Read(u8, u32, u32),
    Poll,
    Other,
}

pub fn req_owned(r: Request) -> OwnedRequest {
    match r {
        Request::ChannelList => OwnedRequest::ChannelList,
        Request::SysInfo => OwnedRequest::SysInfo,
        Request::Ioctl { channel, cmd, .. } => OwnedRequest::Ioctl(channel, cmd),
        Request::Write { channel, offset, data } => OwnedRequest::Write(channel, offset, data.to_vec()),
        Request::Size { channel } => OwnedRequest::Size(channel),
        Request::Read { channel, offset, length } => OwnedRequest::Read(channel, offset, length),
        Request::ChannelPoll => OwnedRequest::Poll,
        _ => OwnedRequest::Other,
    }
}
