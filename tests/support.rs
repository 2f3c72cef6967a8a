//! Shared by the integration tests (included with `mod support;`; not a test target itself):
//! a small JSON reader for the recorded vectors, and drivers that run an engine against
//! scripted peer bytes.
#![allow(dead_code)]

use omv_rpc::{Config, Engine, Io, IoStatus, Role, Status};

// ----- JSON (just enough for tests/vectors/rpc-wire-vectors.json) -----

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(text: &str) -> Json {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing bytes in JSON");
        v
    }
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(kv) => {
                &kv.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no key {key}")).1
            }
            _ => panic!("not an object"),
        }
    }
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array"),
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string"),
        }
    }
    pub fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("not a number"),
        }
    }
    pub fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            _ => panic!("not a bool"),
        }
    }
    pub fn hex(&self) -> Vec<u8> {
        unhex(self.str())
    }
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0);
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(self.s[self.i], c, "JSON: expected {}", c as char);
        self.i += 1;
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(kv);
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value() else { panic!("JSON key") };
                    self.eat(b':');
                    kv.push((k, self.value()));
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b'}' {
                        return Json::Obj(kv);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value());
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b']' {
                        return Json::Arr(a);
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                while self.s[self.i] != b'"' {
                    if self.s[self.i] == b'\\' {
                        self.i += 1;
                        match self.s[self.i] {
                            b'n' => out.push('\n'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let h =
                                    std::str::from_utf8(&self.s[self.i + 1..self.i + 5]).unwrap();
                                out.push(
                                    char::from_u32(u32::from_str_radix(h, 16).unwrap()).unwrap(),
                                );
                                self.i += 4;
                            }
                            c => out.push(c as char),
                        }
                    } else {
                        out.push(self.s[self.i] as char);
                    }
                    self.i += 1;
                }
                self.i += 1;
                Json::Str(out)
            }
            b't' => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                Json::Num(std::str::from_utf8(&self.s[start..self.i]).unwrap().parse().unwrap())
            }
        }
    }
}

pub fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/rpc-wire-vectors.json");
    Json::parse(&std::fs::read_to_string(path).expect("tests/vectors/rpc-wire-vectors.json"))
}

// ----- scripted peer -----

/// A peer that has already written `input` (every byte the other side will read, in order)
/// and records every byte the engine writes. Receives take the next bytes; a receive with
/// too few bytes left times out (and takes what is there, like a real read with a timeout).
/// A FLUSH drops nothing (the peer's bytes are all its next packets: an eager peer) but is
/// recorded: `flushes` holds `written.len()` at each one.
pub struct Script {
    pub input: Vec<u8>,
    pub at: usize,
    pub written: Vec<u8>,
    pub now: u32,
    pub flushes: Vec<usize>,
    /// How long a DISPATCH (the slave's callback) takes on the clock.
    pub callback_ms: u32,
}

/// What a driver does at DISPATCH / DELIVER / PRODUCE.
pub trait Callbacks {
    /// Slave: the result for a call (None: unknown name, answered with an empty result).
    fn dispatch(&mut self, _name_hash: u32, _argument: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// Stream reader: false stops the stream.
    fn deliver(&mut self, _frame: &[u8]) -> bool {
        false
    }
    /// Stream writer: None stops the stream.
    fn produce(&mut self) -> Option<Vec<u8>> {
        None
    }
}

pub struct NoCallbacks;
impl Callbacks for NoCallbacks {}

impl Script {
    pub fn new(input: Vec<u8>) -> Self {
        Script { input, at: 0, written: Vec::new(), now: 0, flushes: Vec::new(), callback_ms: 0 }
    }

    fn take(&mut self, len: usize) -> Option<&[u8]> {
        if self.input.len() - self.at >= len {
            self.at += len;
            Some(&self.input[self.at - len..self.at])
        } else {
            self.at = self.input.len();
            None
        }
    }

    /// Runs `engine` until Done; each receive that times out advances the clock by its timeout.
    pub fn run(&mut self, engine: &mut Engine<Vec<u8>>, cb: &mut dyn Callbacks) -> Status {
        for _ in 0..1_000_000 {
            let now = self.now;
            let (status, buf, advance) = match engine.poll(now) {
                Io::Done(s) => return s,
                Io::Flush => {
                    self.flushes.push(self.written.len());
                    (IoStatus::Ok, None, 0)
                }
                Io::Send { data, .. } => {
                    self.written.extend_from_slice(data);
                    (IoStatus::Ok, None, 0)
                }
                Io::Recv { len, into: Some(into), timeout_ms, .. } => match self.take(len) {
                    Some(bytes) => {
                        into.copy_from_slice(bytes);
                        (IoStatus::Ok, None, 0)
                    }
                    None => (IoStatus::Timeout, None, timeout_ms),
                },
                Io::Recv { len, into: None, timeout_ms, prefix, .. } => {
                    match self.take(len - prefix.len()) {
                        Some(bytes) => (IoStatus::Ok, Some([prefix, bytes].concat()), 0),
                        None => (IoStatus::Timeout, None, timeout_ms),
                    }
                }
                Io::Dispatch { name_hash, argument } => {
                    let result = cb.dispatch(name_hash, argument).unwrap_or_default();
                    let mut packet = vec![0u8; result.len() + 4];
                    packet[2..2 + result.len()].copy_from_slice(&result);
                    (IoStatus::Ok, Some(packet), self.callback_ms)
                }
                Io::Deliver { frame } => {
                    let frame = frame.to_vec();
                    (if cb.deliver(&frame) { IoStatus::Ok } else { IoStatus::Error }, None, 0)
                }
                Io::Produce => match cb.produce() {
                    Some(frame) => (IoStatus::Ok, Some(frame), 0),
                    None => (IoStatus::Error, None, 0),
                },
                Io::Wait { deadline_ms } => (IoStatus::Ok, None, deadline_ms.wrapping_sub(now)),
            };
            self.now = self.now.wrapping_add(advance);
            engine.complete(self.now, status, buf);
        }
        panic!("engine did not finish");
    }
}

pub fn master() -> Engine<Vec<u8>> {
    Engine::new(Role::Master, Config::default())
}

pub fn slave() -> Engine<Vec<u8>> {
    Engine::new(Role::Slave, Config::default())
}

/// The configuration of a door over a byte stream (UART, TCP, pty): packets may be read in
/// pieces, so the slave tells repeats from the packet it waits for.
pub fn byte_stream() -> Config {
    Config { split_reads: 1, ..Config::default() }
}

pub fn stream_master() -> Engine<Vec<u8>> {
    Engine::new(Role::Master, byte_stream())
}

pub fn stream_slave() -> Engine<Vec<u8>> {
    Engine::new(Role::Slave, byte_stream())
}

/// Every byte a slave writes in one call that goes well (acks, RESULT_HEADER, RESULT_DATA).
pub fn slave_bytes(result: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&omv_rpc::wire::empty_packet(omv_rpc::wire::MAGIC_COMMAND_HEADER));
    out.extend_from_slice(&omv_rpc::wire::empty_packet(omv_rpc::wire::MAGIC_COMMAND_DATA));
    out.extend_from_slice(
        &omv_rpc::wire::ResultHeaderRepr { result_len: result.len() as u32 }.to_bytes(),
    );
    let mut data = command_packet(result);
    omv_rpc::wire::frame(omv_rpc::wire::MAGIC_RESULT_DATA, &mut data);
    out.extend_from_slice(&data);
    out
}

/// Every byte a master writes in one call that goes well.
pub fn master_bytes(name_hash: u32, argument: &[u8]) -> Vec<u8> {
    use omv_rpc::wire;
    let mut out = Vec::new();
    out.extend_from_slice(
        &wire::CommandHeaderRepr { name_hash, argument_len: argument.len() as u32 }.to_bytes(),
    );
    let mut data = command_packet(argument);
    wire::frame(wire::MAGIC_COMMAND_DATA, &mut data);
    out.extend_from_slice(&data);
    out.extend_from_slice(&wire::empty_packet(wire::MAGIC_RESULT_HEADER));
    out.extend_from_slice(&wire::empty_packet(wire::MAGIC_RESULT_DATA));
    out
}

/// A command data packet buffer holding `argument`.
pub fn command_packet(argument: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; argument.len() + 4];
    p[2..2 + argument.len()].copy_from_slice(argument);
    p
}
