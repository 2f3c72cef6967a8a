//! The host role of OpenMV Protocol V2 (the crate in protocol/) for Python: `_engine.OmvHost`,
//! sans-IO like the crate. host/python/rpc/_omv.py drives it over a serial port.
use omv_protocol::host::{Host, HostAction, HostConfig};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass]
pub struct OmvHost {
    inner: Box<Host>,
}

#[pymethods]
impl OmvHost {
    #[new]
    #[pyo3(signature = (timeout_ms=1000))]
    fn new(timeout_ms: u32) -> Self {
        OmvHost { inner: Box::new(Host::new(HostConfig { timeout_ms, ..HostConfig::default() })) }
    }

    /// Takes received bytes; returns how many fitted.
    fn receive(&mut self, data: &[u8]) -> usize {
        self.inner.receive(data)
    }

    fn sync(&mut self, now_ms: u64) {
        self.inner.sync(now_ms)
    }

    /// Sends a command; False when one is in progress or the payload is too large.
    fn command(&mut self, now_ms: u64, opcode: u8, channel: u8, payload: &[u8]) -> bool {
        self.inner.command(now_ms, opcode, channel, payload).is_ok()
    }

    fn update_caps(&mut self, crc: bool, seq: bool, max_payload: u16) {
        self.inner.update_caps(crc, seq, max_payload)
    }

    fn max_payload(&self) -> u16 {
        self.inner.config().max_payload
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> (u32, u32, u32, u32) {
        let s = self.inner.stats();
        (s.sent, s.received, s.checksum, s.sequence)
    }

    /// One step: ("idle", None), ("transmit", bytes), ("event", (channel, event)),
    /// ("fragment", bytes), ("response", bytes), ("nak", status), ("timeout", None).
    fn poll(&mut self, py: Python<'_>, now_ms: u64) -> PyResult<(&'static str, PyObject)> {
        Ok(match self.inner.poll(now_ms) {
            HostAction::Idle => ("idle", py.None()),
            HostAction::Transmit(b) => ("transmit", PyBytes::new(py, b).into_any().unbind()),
            HostAction::Event { channel, event } => ("event", (channel, event).into_pyobject(py)?.into_any().unbind()),
            HostAction::Fragment(b) => ("fragment", PyBytes::new(py, b).into_any().unbind()),
            HostAction::Response(b) => ("response", PyBytes::new(py, b).into_any().unbind()),
            HostAction::Nak(s) => ("nak", (s as u16).into_pyobject(py)?.into_any().unbind()),
            HostAction::Timeout => ("timeout", py.None()),
        })
    }
}
