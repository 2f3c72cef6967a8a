//! `rpc._engine`: the omv-rpc engine (the crate at the repository root) as a CPython module.
//!
//! A [`Session`] owns one engine and drives it: it asks the engine what to do next, does it
//! through the Python transport object (`_flush`, `put_bytes`/`get_bytes`, or their stream
//! variants, which move bytes over pyserial, sockets or python-can), and reports back. The
//! protocol (framing, CRC, retries, phases, stream credits) stays in the engine; this file adds
//! what a PC needs around it:
//! - waits measured on the link (`link.rs`): never shorter than the engine's, longer when the
//!   link is slow, jittery or behind a USB latency timer (the phases, retries and their
//!   cadence are the engine's: a missed reply is retried as soon as the link's round trip
//!   says it is missed, and the engine's recovery rules serve the retry);
//! - the RESULT_DATA request written right behind the RESULT_HEADER request (the SEND action);
//! - before a master's retry, input dropped until the link is quiet (the FLUSH action).
//!
//! No engine borrow is held across a call into Python, so a callback may use its rpc object
//! (stats, last_error) while the engine waits for it.

mod link;
mod omvp;

use std::time::{Duration, Instant};

use omv_rpc::engine::{pipeline, Config, Engine, Io, IoStatus, LastError, Packet, Role, Stats, Status};
use omv_rpc::wire;
use pyo3::exceptions::{PyOSError, PyTimeoutError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyMemoryView, PyString};

use link::Link;

/// Default limit on lengths accepted off the wire: the engine's (1 MiB).
const DEFAULT_MAX_LEN: u32 = omv_rpc::defaults::MAX_DATA_LEN;

/// One thing to do, owned (no borrow of the engine), so that Python may run meanwhile.
enum Action {
    Done(Status),
    Flush,
    Send { packet: Packet, timeout_ms: u32, data: Vec<u8> },
    /// `start_timeout_ms`: the engine's first-byte limit for this receive (0: none).
    /// `prefix`: the packet's first bytes, already read by the engine (only the rest is read).
    Recv { packet: Packet, timeout_ms: u32, start_timeout_ms: u32, len: usize, packet_len: usize, prefix: Vec<u8>, into_engine: bool },
    /// A pause the engine asks for (after a transport error), this many ms from now.
    Wait { ms: i32 },
    Dispatch { name_hash: u32, argument: Vec<u8> },
    Deliver { frame: Vec<u8> },
    Produce,
}

/// How an operation uses Python beyond the transport.
enum Hooks<'a, 'py> {
    Call,
    Serve(&'a Bound<'py, PyDict>),
    Reader(&'a Bound<'py, PyAny>),
    Writer(&'a Bound<'py, PyAny>),
}

fn is_stream(packet: Packet) -> bool {
    matches!(
        packet,
        Packet::StreamSetup | Packet::StreamHeader | Packet::StreamFrame | Packet::StreamAck
    )
}

fn is_data(packet: Packet) -> bool {
    matches!(packet, Packet::CommandData | Packet::ResultData)
}

/// The names are the engine's (`Status::name`, as `OMV_RPC_STATUS_NAMES` in the C header).
pub fn status_name(s: Status) -> &'static str {
    s.name()
}

fn add_stats(a: Stats, b: Stats) -> Stats {
    a.wrapping_add(b)
}

/// Bytes of any Python buffer (bytes, bytearray, memoryview, array, ...).
fn buffer_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.downcast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    // memoryview, array, ...: bytes(memoryview(obj)) copies any buffer (the limited API has
    // no buffer access); memoryview() refuses what is not a buffer (an int, a str).
    let view = PyMemoryView::from(obj)
        .map_err(|_| PyTypeError::new_err(format!("a bytes-like object is required, not '{}'", type_name(obj))))?;
    let copied = obj.py().get_type::<PyBytes>().call1((view,))?;
    Ok(copied.downcast::<PyBytes>()?.as_bytes().to_vec())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// A packet buffer `[2 bytes | payload | 2 bytes]` around the bytes of a Python buffer.
fn packet_around(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(framed(b.as_bytes()));
    }
    // A callback that answers text: its UTF-8 bytes (what MicroPython's rpc sends for a str).
    if let Ok(s) = obj.downcast::<pyo3::types::PyString>() {
        return Ok(framed(s.to_cow()?.as_bytes()));
    }
    Ok(framed(&buffer_bytes(obj)?))
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(payload.len() + wire::PACKET_OVERHEAD);
    packet.resize(wire::PAYLOAD_OFFSET, 0);
    packet.extend_from_slice(payload);
    packet.resize(payload.len() + wire::PACKET_OVERHEAD, 0);
    packet
}

/// How a transport call went. Exceptions other than OSError (a bug in an override, a
/// KeyboardInterrupt) are not transport failures: they end the operation and propagate.
fn io_status(py: Python<'_>, r: PyResult<Bound<'_, PyAny>>) -> PyResult<(IoStatus, Option<PyObject>)> {
    match r {
        Ok(v) => Ok((IoStatus::Ok, Some(v.unbind()))),
        Err(e) if e.is_instance_of::<PyTimeoutError>(py) => Ok((IoStatus::Timeout, None)),
        Err(e) if e.is_instance_of::<PyOSError>(py) => Ok((IoStatus::Error, None)),
        Err(e) => Err(e),
    }
}

/// One engine and what the host measured about its link.
#[pyclass(module = "rpc._engine")]
pub struct Session {
    engine: Engine<Vec<u8>>,
    role: Role,
    config: Config,
    /// Counters of engines replaced by a configuration change.
    carried: Stats,
    clock: Instant,
    link: Link,
    /// Stretch waits to the measured link (False: the reference timing, for comparison).
    #[pyo3(get, set)]
    adaptive: bool,
    /// When the last packet was written and how long it was (None once anything else ran).
    last_send: Option<(Instant, usize)>,
    /// cancel() was called: the running operation ends at its next step.
    cancel_requested: bool,
    /// The last operation ended by cancel().
    #[pyo3(get)]
    cancelled: bool,
}

impl Session {
    fn now(&self) -> u32 {
        // ticks_ms: a wrapping millisecond counter.
        self.clock.elapsed().as_millis() as u32
    }

    fn new_engine(role: Role, config: Config) -> Engine<Vec<u8>> {
        Engine::new(role, config)
    }

    /// The next action, owned.
    fn next_action(&mut self) -> Action {
        let now = self.now();
        let io = self.engine.poll(now);
        let mut action = match io {
            Io::Done(s) => Action::Done(s),
            Io::Flush => Action::Flush,
            Io::Send { packet, timeout_ms, data, .. } => Action::Send { packet, timeout_ms, data: data.to_vec() },
            Io::Recv { packet, timeout_ms, len, packet_len, prefix, into, .. } => Action::Recv {
                packet,
                timeout_ms,
                start_timeout_ms: 0,
                len,
                packet_len,
                prefix: prefix.to_vec(),
                into_engine: into.is_some(),
            },
            Io::Wait { deadline_ms } => Action::Wait { ms: deadline_ms.wrapping_sub(now) as i32 },
            Io::Dispatch { name_hash, argument } => Action::Dispatch { name_hash, argument: argument.to_vec() },
            Io::Deliver { frame } => Action::Deliver { frame: frame.to_vec() },
            Io::Produce => Action::Produce,
        };
        if let Action::Recv { start_timeout_ms, .. } = &mut action {
            *start_timeout_ms = self.engine.start_timeout_ms();
        }
        action
    }

    /// Waits for a receive: (first byte or whole packet, longest gap between bytes, total), ms.
    /// `start_ms` is the engine's first-byte limit (`Engine::start_timeout_ms`, 0: none): the
    /// master's RESULT_DATA request may have reached the slave after its short timeout, and
    /// then nothing comes until a retry. The first byte is waited for at most that long, but
    /// never less than the link needs for a reply, and never more than the engine's timeout.
    fn recv_waits(&self, packet: Packet, engine_ms: u32, start_ms: u32, len: usize) -> (u32, Option<u32>, u32) {
        if !self.adaptive || is_stream(packet) {
            // The engine's own timing, its first-byte limit included.
            let first = if start_ms > 0 { start_ms.min(engine_ms) } else { engine_ms };
            return (first, None, engine_ms);
        }
        let (first, gap, total) = self.link_recv_waits(packet, engine_ms, len);
        if start_ms == 0 {
            return (first, gap, total);
        }
        let after_send = self.last_send.map_or(0.0, |(_, n)| self.link.wire_ms(n));
        let link_min = self.reply_wait_ms(packet) + after_send;
        let limit = f64::from(start_ms).max(link_min).min(f64::from(engine_ms));
        (first.min(limit.ceil() as u32), gap, total)
    }

    /// How long the link needs for a reply to what was just written (before the wire time of
    /// that), by role: the master's measured round trip (a reply later than that is missed,
    /// and the engine's retry is answered by a slave that still holds what was asked for);
    /// the slave waits two, for the master's next packet.
    fn reply_wait_ms(&self, _packet: Packet) -> f64 {
        let reply = self.link.reply_ms();
        match self.role {
            Role::Master => reply,
            Role::Slave => 2.0 * reply,
        }
    }

    /// The waits of [`Session::recv_waits`] from the link estimate alone.
    fn link_recv_waits(&self, packet: Packet, engine_ms: u32, len: usize) -> (u32, Option<u32>, u32) {
        let reply = self.link.reply_ms();
        let after_send = self.last_send.map_or(0.0, |(_, n)| self.link.wire_ms(n));
        let engine = f64::from(engine_ms);
        // An empty RESULT_DATA too: small, but the engine gives it the long timeout.
        let result_data = self.role == Role::Master && packet == Packet::ResultData;
        if is_data(packet) && (len > wire::PACKET_OVERHEAD || result_data) {
            let total = engine.max(reply + after_send + 2.0 * self.link.wire_ms(len));
            // The master asked for this packet one round trip ago: it starts within a reply
            // wait or not at all (a slave that missed the request holds its result only for
            // its own send_timeout: the retry must come soon). The slave waits as the
            // reference does (the long timeout): any packet the master sends meanwhile ends
            // the wait anyway.
            let first = match self.role {
                Role::Master => (self.reply_wait_ms(packet) + after_send).min(total),
                Role::Slave => total,
            };
            let gap = self.link.gap_ms();
            (first.ceil() as u32, Some(gap.ceil() as u32), total.ceil() as u32)
        } else {
            // A slave loses nothing by waiting longer for the master's next packet: a new
            // attempt of the master's ends the wait (a packet it did not expect).
            let t = engine.max(self.reply_wait_ms(packet) + after_send);
            (t.ceil() as u32, None, t.ceil() as u32)
        }
    }

    fn send_wait(&self, packet: Packet, engine_ms: u32, len: usize) -> u32 {
        if !self.adaptive || is_stream(packet) {
            return engine_ms;
        }
        let t = f64::from(engine_ms).max(self.link.reply_ms() + self.link.wire_ms(len));
        t.ceil() as u32
    }

    fn complete(&mut self, status: IoStatus, buf: Option<Vec<u8>>) {
        let now = self.now();
        self.engine.complete(now, status, buf);
    }

    /// Starts an operation: `begin`, then `start_op` on the engine; an engine that refuses to
    /// start (busy, a bad buffer) is a ValueError saying which operation `what` could not.
    fn start(
        &mut self,
        what: &str,
        start_op: impl FnOnce(&mut Engine<Vec<u8>>, u32) -> Status,
    ) -> PyResult<()> {
        let now = self.now();
        self.begin();
        match start_op(&mut self.engine, now) {
            Status::Ok => Ok(()),
            other => Err(PyValueError::new_err(format!("{what} could not start: {}", status_name(other)))),
        }
    }

    fn begin(&mut self) {
        self.cancel_requested = false;
        self.cancelled = false;
        self.last_send = None;
    }
}

/// Runs the engine's current operation to its end.
fn drive(slf: &Bound<'_, Session>, transport: &Bound<'_, PyAny>, hooks: Hooks<'_, '_>) -> PyResult<Status> {
    let result = drive_inner(slf, transport, &hooks);
    if result.is_err() {
        let mut s = slf.borrow_mut();
        s.engine.abort();
    }
    result
}

fn drive_inner(slf: &Bound<'_, Session>, transport: &Bound<'_, PyAny>, hooks: &Hooks<'_, '_>) -> PyResult<Status> {
    let py = slf.py();
    loop {
        {
            let mut s = slf.borrow_mut();
            if s.cancel_requested {
                s.cancel_requested = false;
                s.engine.abort();
                return Ok(Status::Busy);
            }
        }
        let action = slf.borrow_mut().next_action();
        match action {
            Action::Done(status) => return Ok(status),
            Action::Flush => {
                // The engine flushes before a retry or after a failure: replies to the attempt
                // given up on may still be on their way. The package's transports then drop
                // input until the link has been quiet a while (a user's transport just flushes).
                // Only the master: a slave that waited for quiet would eat the master's
                // next request.
                let quiet = {
                    let s = slf.borrow();
                    (s.adaptive && s.role == Role::Master).then(|| s.link.quiet_ms())
                };
                let r = match quiet {
                    Some(q) if transport.hasattr("_flush_quiet")? => {
                        transport.call_method1("_flush_quiet", (q, 4.0 * q))
                    }
                    _ => transport.call_method0("_flush"),
                };
                // A flush failure is a broken transport: the next send or receive says so.
                io_status(py, r)?;
                let mut s = slf.borrow_mut();
                s.last_send = None;
                s.complete(IoStatus::Ok, None);
            }
            Action::Send { packet, timeout_ms, data } => {
                let (wait, method) = {
                    let s = slf.borrow();
                    let method = if is_stream(packet) { "_stream_put_bytes" } else { "put_bytes" };
                    (s.send_wait(packet, timeout_ms, data.len()), method)
                };
                let len = data.len();
                let bytes = PyBytes::new(py, &data);
                let (status, _) = io_status(py, transport.call_method1(method, (bytes, wait)))?;
                let mut s = slf.borrow_mut();
                s.last_send = if status == IoStatus::Ok { Some((Instant::now(), len)) } else { None };
                s.complete(status, None);
            }
            Action::Wait { ms } => {
                if ms > 0 {
                    py.allow_threads(|| std::thread::sleep(Duration::from_millis(ms as u64)));
                }
                slf.borrow_mut().complete(IoStatus::Ok, None);
            }
            Action::Recv { packet, timeout_ms, start_timeout_ms, len: whole_len, packet_len, prefix, into_engine } => {
                // Only what the engine has not read yet (its prefix: the packet's first bytes).
                let len = whole_len - prefix.len().min(whole_len);
                let (first, gap, total) = slf.borrow().recv_waits(packet, timeout_ms, start_timeout_ms, len);
                // (For a transport that routes by size; one that has no such attribute ignores it.)
                let _ = transport.setattr("_packet_len", packet_len);
                let buf = PyByteArray::new(py, &vec![0u8; len]);
                let recv_began = Instant::now();
                let r = if is_stream(packet) {
                    transport.call_method1("_stream_get_bytes", (&buf, total))
                } else {
                    transport.call_method1("_recv", (&buf, first, gap, total))
                };
                let (mut status, got) = io_status(py, r)?;
                let mut bytes = None;
                if status == IoStatus::Ok {
                    match got {
                        Some(obj) if !obj.is_none(py) => {
                            let v = buffer_bytes(obj.bind(py))?;
                            if v.len() == len {
                                bytes = Some(if prefix.is_empty() { v } else { [&prefix[..], &v[..]].concat() });
                            } else {
                                // An override that returned the wrong amount: nothing usable came.
                                status = IoStatus::Timeout;
                            }
                        }
                        _ => status = IoStatus::Timeout,
                    }
                }
                // How long the first byte took after the receive began (native transports).
                let first_delay = if status == IoStatus::Ok && is_data(packet) {
                    transport
                        .getattr("_rx_first_delay")
                        .ok()
                        .and_then(|v| v.extract::<f64>().ok())
                        .map(|secs| Duration::from_secs_f64(secs.max(0.0)))
                } else {
                    None
                };
                let mut s = slf.borrow_mut();
                if s.adaptive && !is_stream(packet) {
                    match (status, s.last_send) {
                        (IoStatus::Ok, Some((sent_at, _))) if is_data(packet) && len > wire::PACKET_OVERHEAD => {
                            let elapsed = sent_at.elapsed();
                            if let Some(first) = first_delay {
                                let waited = recv_began.saturating_duration_since(sent_at);
                                s.link.rtt_sample(waited + first, 1);
                                s.link.rate_sample(elapsed.saturating_sub(waited + first), len);
                            }
                        }
                        // The slave's RESULT_DATA request may have been written before our
                        // RESULT_HEADER left (a pipelining master): no round trip in it.
                        (IoStatus::Ok, Some(_)) if s.role == Role::Slave && packet == Packet::ResultData => {}
                        (IoStatus::Ok, Some((sent_at, _))) => s.link.rtt_sample(sent_at.elapsed(), len),
                        (IoStatus::Timeout, Some(_)) => s.link.reply_missed(),
                        _ => {}
                    }
                }
                s.last_send = None;
                if into_engine {
                    if let Some(v) = bytes {
                        let now = s.now();
                        if let Io::Recv { into: Some(into), .. } = s.engine.poll(now) {
                            into.copy_from_slice(&v);
                        }
                    }
                    s.complete(status, None);
                } else {
                    s.complete(status, bytes);
                }
            }
            Action::Dispatch { name_hash, argument } => {
                let Hooks::Serve(callbacks) = hooks else {
                    slf.borrow_mut().complete(IoStatus::Error, None);
                    continue;
                };
                let result = match callbacks.get_item(name_hash)? {
                    // The slave answers an unknown name with an empty result.
                    None => framed(&[]),
                    Some(cb) => {
                        let arg = PyBytes::new(py, &argument);
                        let out = cb.call1((PyMemoryView::from(&arg)?,))?;
                        if out.is_none() {
                            framed(&[])
                        } else {
                            packet_around(&out)?
                        }
                    }
                };
                let mut s = slf.borrow_mut();
                s.last_send = None;
                s.complete(IoStatus::Ok, Some(result));
            }
            Action::Deliver { frame } => {
                let status = match hooks {
                    Hooks::Reader(cb) => {
                        let f = PyBytes::new(py, &frame);
                        let out = cb.call1((PyMemoryView::from(&f)?,))?;
                        // Returning False stops the stream (an extension; None goes on).
                        if out.is_instance_of::<pyo3::types::PyBool>() && !out.is_truthy()? {
                            IoStatus::Error
                        } else {
                            IoStatus::Ok
                        }
                    }
                    _ => IoStatus::Error,
                };
                let mut s = slf.borrow_mut();
                s.last_send = None;
                s.complete(status, None);
            }
            Action::Produce => {
                let (status, frame) = match hooks {
                    Hooks::Writer(cb) => {
                        let out = cb.call0()?;
                        // Returning None stops the stream (an extension: the reference fails).
                        if out.is_none() {
                            (IoStatus::Error, None)
                        } else {
                            (IoStatus::Ok, Some(buffer_bytes(&out)?))
                        }
                    }
                    _ => (IoStatus::Error, None),
                };
                let mut s = slf.borrow_mut();
                s.last_send = None;
                s.complete(status, frame);
            }
        }
    }
}

fn u32_arg(name: &str, v: i64) -> PyResult<u32> {
    u32::try_from(v).map_err(|_| PyValueError::new_err(format!("{name} must be in [0, 2**32): {v}")))
}

#[pymethods]
impl Session {
    /// Session(master: bool)
    #[new]
    fn py_new(master: bool) -> Self {
        let role = if master { Role::Master } else { Role::Slave };
        let config = Config {
            max_argument_len: DEFAULT_MAX_LEN,
            max_result_len: DEFAULT_MAX_LEN,
            max_frame_len: DEFAULT_MAX_LEN,
            // The reference slave waits for the RESULT_DATA request only a few ms after it
            // sends the RESULT_HEADER: less than one round trip on a slow or jittery link.
            // Written right behind the RESULT_HEADER request, it is already in the slave's
            // input when it looks (the engine's pipelining; same byte stream).
            pipeline: pipeline::RESULT_DATA_REQUEST,
            ..Config::default()
        };
        Session {
            engine: Session::new_engine(role, config),
            role,
            config,
            carried: Stats::default(),
            clock: Instant::now(),
            link: Link::default(),
            adaptive: true,
            last_send: None,
            cancel_requested: false,
            cancelled: false,
        }
    }

    /// One call: the result bytes, or None when a phase ran out of time (see last_error()).
    fn call(
        slf: &Bound<'_, Self>,
        transport: &Bound<'_, PyAny>,
        name_hash: i64,
        data: &Bound<'_, PyAny>,
        send_timeout: i64,
        recv_timeout: i64,
    ) -> PyResult<Option<PyObject>> {
        let py = slf.py();
        let name_hash = u32_arg("name hash", name_hash)?;
        let send_timeout = u32_arg("send_timeout", send_timeout)?;
        let recv_timeout = u32_arg("recv_timeout", recv_timeout)?;
        let packet = packet_around(data)?;
        slf.borrow_mut().start("call", |e, now| {
            e.call_start(name_hash, packet, send_timeout, recv_timeout, now)
        })?;
        let status = drive(slf, transport, Hooks::Call)?;
        let mut s = slf.borrow_mut();
        // drive() says Busy only when cancel() ended the call.
        s.cancelled = status == Status::Busy;
        let out = if status == Status::Ok {
            s.engine.result().map(|r| PyBytes::new(py, r).into_any().unbind())
        } else {
            None
        };
        s.engine.take_incoming();
        s.engine.take_outgoing();
        Ok(out)
    }

    /// One turn of loop(): returns the status name ("OK" when a command was served and its
    /// result taken, "NO_COMMAND" when none came).
    fn serve(
        slf: &Bound<'_, Self>,
        transport: &Bound<'_, PyAny>,
        callbacks: &Bound<'_, PyDict>,
        recv_timeout: i64,
        send_timeout: i64,
    ) -> PyResult<&'static str> {
        let recv_timeout = u32_arg("recv_timeout", recv_timeout)?;
        let send_timeout = u32_arg("send_timeout", send_timeout)?;
        slf.borrow_mut().start("serve", |e, now| {
            e.serve_start(recv_timeout, send_timeout, now)
        })?;
        let status = drive(slf, transport, Hooks::Serve(callbacks))?;
        let mut s = slf.borrow_mut();
        s.engine.take_incoming();
        // The result packet stays with the engine: it answers the master's repeated result
        // requests from it in the next turn (split_reads), until a new command replaces it.
        Ok(status_name(status))
    }

    /// Receive frames until the stream ends; returns the status name that ended it.
    fn stream_reader(
        slf: &Bound<'_, Self>,
        transport: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        queue_depth: i64,
        read_timeout_ms: i64,
    ) -> PyResult<&'static str> {
        let queue_depth = u32_arg("queue_depth", queue_depth)?;
        let read_timeout_ms = u32_arg("read_timeout_ms", read_timeout_ms)?;
        slf.borrow_mut().start("stream", |e, now| e.stream_reader_start(queue_depth, read_timeout_ms, now))?;
        let status = drive(slf, transport, Hooks::Reader(callback))?;
        let mut s = slf.borrow_mut();
        s.engine.take_incoming();
        Ok(status_name(status))
    }

    /// Send frames until the stream ends; returns the status name that ended it.
    fn stream_writer(
        slf: &Bound<'_, Self>,
        transport: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        write_timeout_ms: i64,
    ) -> PyResult<&'static str> {
        let write_timeout_ms = u32_arg("write_timeout_ms", write_timeout_ms)?;
        slf.borrow_mut().start("stream", |e, now| e.stream_writer_start(write_timeout_ms, now))?;
        let status = drive(slf, transport, Hooks::Writer(callback))?;
        let mut s = slf.borrow_mut();
        s.engine.take_outgoing();
        Ok(status_name(status))
    }

    /// End the running operation at its next step (from another thread: the call in
    /// progress returns None, `cancelled` is then True).
    fn cancel(&mut self) {
        if self.engine.is_busy() {
            self.cancel_requested = true;
        }
    }

    /// "<STATUS>: <PACKET> <reason> (<n> attempt[s])" of the last operation that failed: the
    /// engine's text (`LastError::describe`, the module's `omv_rpc_last_error_text`).
    fn last_error_text(&self) -> String {
        let e: LastError = self.engine.last_error();
        let mut text = [0u8; 96];
        let n = e.describe(&mut text);
        String::from_utf8_lossy(&text[..n]).into_owned()
    }

    /// (status, packet, reason, attempts) names and count of the last failed operation.
    fn last_error_info(&self) -> (&'static str, &'static str, &'static str, u32) {
        let e = self.engine.last_error();
        (e.status.name(), e.packet.name(), e.reason.name(), e.attempts)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = add_stats(self.carried, self.engine.stats());
        let d = PyDict::new(py);
        for (name, value) in Stats::FIELDS.iter().zip(s.values()) {
            d.set_item(*name, value)?;
        }
        Ok(d)
    }

    fn stats_reset(&mut self) {
        self.carried = Stats::default();
        self.engine.stats_reset();
    }

    /// What the host measured about its link.
    fn link<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("srtt_ms", self.link.srtt_ms())?;
        d.set_item("rttvar_ms", self.link.rttvar_ms())?;
        d.set_item("rtt_samples", self.link.rtt_samples())?;
        d.set_item("reply_timeout_ms", self.link.reply_ms())?;
        d.set_item("backoff", self.link.backoff())?;
        d.set_item("bytes_per_s", self.link.bytes_per_s())?;
        Ok(d)
    }

    /// The transport's own rate (a UART's baud rate / 10), used until a rate is measured.
    fn set_link_hint(&mut self, bytes_per_s: f64) {
        self.link.hint_bytes_per_s = bytes_per_s.max(0.0);
    }

    /// Forget what was measured (a new link, or a cam that came back after a reboot).
    fn reset_link(&mut self) {
        let hint = self.link.hint_bytes_per_s;
        let mut link = Link::default();
        link.hint_bytes_per_s = hint;
        self.link = link;
    }

    /// Engine configuration; zero takes the reference default. Counters carry over.
    #[pyo3(signature = (short_timeout_ms=None, long_timeout_ms=None, max_argument_len=None,
                        max_result_len=None, max_frame_len=None, max_queue_depth=None,
                        stream_timeout_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn configure(
        &mut self,
        short_timeout_ms: Option<i64>,
        long_timeout_ms: Option<i64>,
        max_argument_len: Option<i64>,
        max_result_len: Option<i64>,
        max_frame_len: Option<i64>,
        max_queue_depth: Option<i64>,
        stream_timeout_ms: Option<i64>,
    ) -> PyResult<()> {
        if self.engine.is_busy() {
            return Err(PyValueError::new_err("cannot configure while an operation runs"));
        }
        let mut c = self.config;
        let set = |field: &mut u32, name: &str, v: Option<i64>| -> PyResult<()> {
            if let Some(v) = v {
                *field = u32_arg(name, v)?;
            }
            Ok(())
        };
        set(&mut c.short_timeout_ms, "short_timeout_ms", short_timeout_ms)?;
        set(&mut c.long_timeout_ms, "long_timeout_ms", long_timeout_ms)?;
        set(&mut c.max_argument_len, "max_argument_len", max_argument_len)?;
        set(&mut c.max_result_len, "max_result_len", max_result_len)?;
        set(&mut c.max_frame_len, "max_frame_len", max_frame_len)?;
        set(&mut c.max_queue_depth, "max_queue_depth", max_queue_depth)?;
        set(&mut c.stream_timeout_ms, "stream_timeout_ms", stream_timeout_ms)?;
        self.carried = add_stats(self.carried, self.engine.stats());
        self.config = c;
        self.engine = Session::new_engine(self.role, c);
        Ok(())
    }

    /// Requests written right behind the one before them (master): False (the reference
    /// order), True (the RESULT_DATA request behind the RESULT_HEADER request: the default,
    /// safe with every slave), or "all" (COMMAND_DATA behind COMMAND_HEADER too: the slave
    /// must buffer COMMAND_DATA while it handles the header, as this project's slaves do).
    #[getter]
    fn pipeline<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match self.config.pipeline {
            0 => PyBool::new(py, false).to_owned().into_any(),
            pipeline::RESULT_DATA_REQUEST => PyBool::new(py, true).to_owned().into_any(),
            _ => PyString::new(py, "all").into_any(),
        }
    }

    #[setter]
    fn set_pipeline(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.engine.is_busy() {
            return Err(PyValueError::new_err("cannot configure while an operation runs"));
        }
        let bits = if let Ok(text) = value.extract::<String>() {
            if text != "all" {
                return Err(PyValueError::new_err("pipeline must be True, False or \"all\""));
            }
            pipeline::RESULT_DATA_REQUEST | pipeline::COMMAND_DATA
        } else if value.is_truthy()? {
            pipeline::RESULT_DATA_REQUEST
        } else {
            0
        };
        self.config.pipeline = bits;
        self.carried = add_stats(self.carried, self.engine.stats());
        self.engine = Session::new_engine(self.role, self.config);
        Ok(())
    }

    /// True when the transport is a byte stream that may be read in pieces (a serial port,
    /// a stream, UDP read through a datagram buffer): the slave then tells repeated requests
    /// from the packet it waits for and keeps its last result (the engine's split_reads).
    /// False for a transport whose reads must match the peer's writes (an override of
    /// get_bytes, CAN frames).
    #[getter]
    fn split_reads(&self) -> bool {
        self.config.split_reads != 0
    }

    #[setter]
    fn set_split_reads(&mut self, value: bool) -> PyResult<()> {
        if self.engine.is_busy() {
            return Err(PyValueError::new_err("cannot configure while an operation runs"));
        }
        self.carried = add_stats(self.carried, self.engine.stats());
        self.config.split_reads = u32::from(value);
        self.engine = Session::new_engine(self.role, self.config);
        Ok(())
    }

    /// The configuration in force, defaults filled in.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.engine.config();
        let d = PyDict::new(py);
        d.set_item("short_timeout_ms", c.short_timeout_ms)?;
        d.set_item("long_timeout_ms", c.long_timeout_ms)?;
        d.set_item("max_argument_len", c.max_argument_len)?;
        d.set_item("max_result_len", c.max_result_len)?;
        d.set_item("max_frame_len", c.max_frame_len)?;
        d.set_item("max_queue_depth", c.max_queue_depth)?;
        d.set_item("stream_timeout_ms", c.stream_timeout_ms)?;
        Ok(d)
    }
}

/// CRC-16/CCITT-FALSE of a buffer (the packets' CRC).
#[pyfunction]
fn crc16(data: &Bound<'_, PyAny>) -> PyResult<u16> {
    Ok(wire::crc16(&buffer_bytes(data)?))
}

/// The 32-bit name hash that names a callback on the wire (str is UTF-8 encoded).
#[pyfunction]
fn name_hash(name: &Bound<'_, PyAny>) -> PyResult<u32> {
    if let Ok(s) = name.downcast::<pyo3::types::PyString>() {
        return Ok(wire::name_hash(s.to_cow()?.as_bytes()));
    }
    Ok(wire::name_hash(&buffer_bytes(name)?))
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Session>()?;
    m.add_class::<omvp::OmvHost>()?;
    m.add_function(wrap_pyfunction!(crc16, m)?)?;
    m.add_function(wrap_pyfunction!(name_hash, m)?)?;
    m.add("DEFAULT_MAX_LEN", DEFAULT_MAX_LEN)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A master on a link whose round trip was measured at `rtt`.
    fn master_with_rtt(rtt: Duration) -> Session {
        let mut s = Session::py_new(true);
        for _ in 0..20 {
            s.link.rtt_sample(rtt, 4);
        }
        s.begin();
        s
    }

    const EMPTY: usize = wire::PACKET_OVERHEAD;

    #[test]
    fn result_data_first_byte_never_below_the_links_reply_wait() {
        // 16 ms each way: the engine's least limit (its 3 ms short timeout) would fail every call.
        let s = master_with_rtt(Duration::from_millis(32));
        let link_min = s.link.reply_ms().ceil() as u32;
        for len in [EMPTY, 604] {
            let (first, _, total) = s.recv_waits(Packet::ResultData, 5000, 3, len);
            assert!(first >= link_min, "{len} B: first {first} ms < {link_min} ms");
            assert!(total >= 5000, "{len} B: total {total} ms");
        }
    }

    #[test]
    fn result_data_first_byte_within_the_engines_limit_and_timeout() {
        let s = master_with_rtt(Duration::from_micros(300));
        for len in [EMPTY, 604] {
            let (first, gap, _) = s.recv_waits(Packet::ResultData, 5000, 2500, len);
            assert!(first <= 2500, "{len} B: first {first} ms");
            assert!(gap.is_some(), "{len} B: a data packet has a gap rule");
            // Never more than the engine's own timeout, whatever the link says.
            assert!(s.recv_waits(Packet::ResultData, 50, 3, len).0 <= 50);
        }
        // An empty result starts as soon as a non-empty one (it used to wait 5000 ms).
        assert_eq!(
            s.recv_waits(Packet::ResultData, 5000, 2500, EMPTY).0,
            s.recv_waits(Packet::ResultData, 5000, 2500, 604).0
        );
    }

    #[test]
    fn reference_timing_takes_the_engines_limit_as_it_is() {
        let mut s = master_with_rtt(Duration::from_millis(32));
        s.adaptive = false;
        assert_eq!(s.recv_waits(Packet::ResultData, 5000, 2500, EMPTY), (2500, None, 5000));
        assert_eq!(s.recv_waits(Packet::ResultData, 5000, 0, EMPTY), (5000, None, 5000));
        assert_eq!(s.recv_waits(Packet::ResultHeader, 3, 0, 8), (3, None, 3));
    }

    #[test]
    fn other_receives_keep_the_links_waits() {
        let s = master_with_rtt(Duration::from_millis(32));
        for (packet, engine_ms, len) in
            [(Packet::CommandHeader, 3, EMPTY), (Packet::CommandData, 3, EMPTY), (Packet::ResultHeader, 3, 8)]
        {
            assert_eq!(s.recv_waits(packet, engine_ms, 0, len), s.link_recv_waits(packet, engine_ms, len));
        }
    }

    #[test]
    fn a_missed_reply_is_retried_after_the_links_round_trip_not_a_patient_wait() {
        // On a fast link (0.3 ms round trips) the COMMAND_DATA ack and the RESULT_HEADER are
        // given up on within a few ms: the engine's retry reaches a slave that drops requests
        // sent while its callback ran (the Arduino library) while it still listens.
        let s = master_with_rtt(Duration::from_micros(300));
        for (packet, len) in [(Packet::CommandData, EMPTY), (Packet::ResultHeader, 8)] {
            let (first, _, total) = s.recv_waits(packet, 6, 0, len);
            assert!(total <= 10, "{packet:?}: {total} ms");
            assert_eq!(first, total);
        }
    }
}
