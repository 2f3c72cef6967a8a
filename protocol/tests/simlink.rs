//! Our host role against our device role over a lossy simulated link: packets dropped, a bit
//! flipped, duplicated, or held back behind the next one (fragments reordered). The host
//! driver does what the `openmv` package does on an error (resync, then the call again);
//! every call that completes must be right: 0 wrong.
mod common;
use common::{device_config, App};
use omv_protocol::device::Device;
use omv_protocol::host::{Host, HostAction, HostConfig};
use omv_protocol::wire::{opcode, Caps, Status};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// One direction of the link: whole writes, each maybe faulted.
struct Pipe {
    queue: Vec<Vec<u8>>,
    held: Option<Vec<u8>>,
}

impl Pipe {
    fn send(&mut self, rng: &mut Rng, per_mille: u64, b: &[u8]) {
        let mut b = b.to_vec();
        match rng.next() % 4 {
            _ if !rng.chance(per_mille) => {}
            0 => return,
            1 => {
                let i = (rng.next() as usize) % b.len();
                b[i] ^= 1 << (rng.next() % 8);
            }
            2 => self.queue.push(b.clone()),
            _ => {
                if self.held.is_none() {
                    self.held = Some(b);
                    return;
                }
            }
        }
        self.queue.push(b);
        if let Some(h) = self.held.take() {
            self.queue.push(h);
        }
    }
    fn flush_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.queue.push(h);
        }
    }
}

enum Outcome {
    Done(Vec<u8>),
    Failed,
}

struct Sim {
    rng: Rng,
    per_mille: u64,
    now: u64,
    host: Host,
    dev: Device,
    app: App,
    to_dev: Pipe,
    to_host: Pipe,
}

impl Sim {
    fn new(seed: u64, per_mille: u64) -> Sim {
        Sim {
            rng: Rng(seed | 1),
            per_mille,
            now: 0,
            host: Host::new(HostConfig::default()),
            dev: Device::new(device_config()),
            app: App::new(),
            to_dev: Pipe { queue: Vec::new(), held: None },
            to_host: Pipe { queue: Vec::new(), held: None },
        }
    }

    /// Runs the link until the host's command ends.
    fn finish(&mut self) -> Outcome {
        let mut answer = Vec::new();
        loop {
            let mut progress = false;
            loop {
                match self.host.poll(self.now) {
                    HostAction::Idle => break,
                    HostAction::Transmit(b) => {
                        let b = b.to_vec();
                        self.to_dev.send(&mut self.rng, self.per_mille, &b);
                    }
                    HostAction::Event { .. } => {}
                    HostAction::Fragment(p) => answer.extend_from_slice(p),
                    HostAction::Response(p) => {
                        answer.extend_from_slice(p);
                        return Outcome::Done(answer);
                    }
                    HostAction::Nak(_) | HostAction::Timeout => return Outcome::Failed,
                }
                progress = true;
            }
            for b in std::mem::take(&mut self.to_dev.queue) {
                self.dev.receive(&b);
                progress = true;
            }
            let out = self.app.run(&mut self.dev, self.now);
            if !out.is_empty() {
                // The device writes packet by packet; split so that faults hit single packets.
                let mut i = 0;
                while i < out.len() {
                    let h = omv_protocol::wire::Header::parse(&out[i..], false).unwrap();
                    let n = h.packet_len();
                    self.to_host.send(&mut self.rng, self.per_mille, &out[i..i + n]);
                    i += n;
                }
                progress = true;
            }
            for b in std::mem::take(&mut self.to_host.queue) {
                self.host.receive(&b);
                progress = true;
            }
            if !progress {
                // Quiet link: let held-back packets through, then let time pass.
                if self.to_dev.held.is_some() || self.to_host.held.is_some() {
                    self.to_dev.flush_held();
                    self.to_host.flush_held();
                    continue;
                }
                let next = [self.host.poll_timeout(), self.dev.poll_timeout()].into_iter().flatten().min();
                self.now = next.unwrap_or(self.now + 1).max(self.now + 1);
            }
        }
    }

    fn call(&mut self, op: u8, chan: u8, payload: &[u8]) -> Outcome {
        self.host.command(self.now, op, chan, payload).unwrap();
        self.finish()
    }

    /// The package's _resync: SYNC, GET_CAPS, SET_CAPS (4082-byte payloads), until it works.
    fn connect(&mut self) {
        for _ in 0..200 {
            self.host.sync(self.now);
            if !matches!(self.finish(), Outcome::Done(_)) {
                continue;
            }
            if !matches!(self.call(opcode::PROTO_GET_CAPS, 0, &[]), Outcome::Done(_)) {
                continue;
            }
            let caps = Caps { crc: true, seq: true, ack: true, events: true, max_payload: 4082 }.emit();
            if matches!(self.call(opcode::PROTO_SET_CAPS, 0, &caps), Outcome::Done(_)) {
                self.host.update_caps(true, true, 4082);
                return;
            }
        }
        panic!("no connection in 200 attempts");
    }

    /// A call with the package's retry: resync and again, until it completes.
    fn call_retrying(&mut self, op: u8, chan: u8, payload: &[u8]) -> (Vec<u8>, u32) {
        for attempt in 0..200 {
            if let Outcome::Done(a) = self.call(op, chan, payload) {
                return (a, attempt);
            }
            self.connect();
        }
        panic!("call never completed");
    }
}

fn run(seed: u64, per_mille: u64, calls: usize) -> (usize, u32) {
    let mut s = Sim::new(seed, per_mille);
    s.connect();
    let mut wrong = 0;
    let mut retries = 0;
    let mut model: Vec<u8> = Vec::new();
    for i in 0..calls {
        let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(i as u64) | 1);
        let len = (rng.next() % 3000) as usize + 1;
        let off = (rng.next() % 2000) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut w = Vec::new();
        w.extend_from_slice(&(off as u32).to_le_bytes());
        w.extend_from_slice(&(len as u32).to_le_bytes());
        w.extend_from_slice(&data);
        let (a, r) = s.call_retrying(opcode::CHANNEL_WRITE, 5, &w);
        retries += r;
        if !a.is_empty() {
            wrong += 1;
        }
        if model.len() < off + len {
            model.resize(off + len, 0);
        }
        model[off..off + len].copy_from_slice(&data);
        let (size, r) = s.call_retrying(opcode::CHANNEL_SIZE, 5, &[]);
        retries += r;
        if size != (model.len() as u32).to_le_bytes() {
            wrong += 1;
        }
        let mut rq = Vec::new();
        rq.extend_from_slice(&0u32.to_le_bytes());
        rq.extend_from_slice(&(model.len() as u32).to_le_bytes());
        let (back, r) = s.call_retrying(opcode::CHANNEL_READ, 5, &rq);
        retries += r;
        if back != model {
            wrong += 1;
        }
    }
    (wrong, retries)
}

#[test]
fn a_clean_link_needs_no_retry() {
    let (wrong, retries) = run(1, 0, 40);
    assert_eq!((wrong, retries), (0, 0));
}

#[test]
fn a_lossy_link_gives_zero_wrong_answers() {
    for seed in 1..=24u64 {
        let (wrong, r) = run(seed * 0x9E37_79B9, 30, 20);
        if std::env::var("SIMLINK_VERBOSE").is_ok() {
            eprintln!("seed {} retries {}", seed, r);
        }
        assert_eq!(wrong, 0, "seed {}", seed);
    }
}

#[test]
fn a_very_lossy_link_still_gives_zero_wrong_answers() {
    for seed in 1..=8u64 {
        let (wrong, _) = run(seed * 0x51_7CC1, 150, 8);
        assert_eq!(wrong, 0, "seed {}", seed);
    }
}

#[test]
fn a_nak_ends_the_call_with_its_status() {
    let mut s = Sim::new(3, 0);
    s.connect();
    // A CHANNEL_READ of length 0 is refused as INVALID.
    s.host.command(0, opcode::CHANNEL_READ, 5, &[0; 8]).unwrap();
    let mut st = None;
    for _ in 0..10 {
        for b in std::mem::take(&mut s.to_dev.queue) {
            s.dev.receive(&b);
        }
        let out = s.app.run(&mut s.dev, 0);
        s.host.receive(&out);
        loop {
            match s.host.poll(0) {
                HostAction::Idle => break,
                HostAction::Transmit(b) => {
                    let b = b.to_vec();
                    s.to_dev.queue.push(b)
                }
                HostAction::Nak(x) => st = Some(x),
                _ => {}
            }
        }
    }
    assert_eq!(st, Some(Status::Invalid));
}
