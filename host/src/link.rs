//! What the computer side learns about its link, and the waits it derives from that.
//!
//! The engine's timeouts are the reference timing: 3 ms short waits that a real-time cam on a
//! fast link meets. A PC adds scheduling jitter, a USB-serial adapter adds its latency timer
//! (16 ms by default on FTDI parts) and a slow UART adds wire time. The host therefore measures
//! the time from each packet it sends to the reply it receives (round trip, smoothed like TCP's
//! SRTT/RTTVAR) and the rate at which data packets arrive, and waits for a reply at least
//! that long. It only ever waits *longer* than the engine asks for and sends as soon as the
//! engine asks, so the peer's own (short) timeouts are never made harder to meet.

use std::time::Duration;

/// Added to every reply wait: the scheduler of a loaded PC.
const MARGIN_MS: f64 = 3.0;
/// Before the first measurement: room for a 16 ms USB latency timer and a slow link both
/// ways. A first wait that is too short has the peer answer two requests, and the second
/// answer is taken for the reply to the next packet.
const INITIAL_SRTT_MS: f64 = 30.0;
const INITIAL_RTTVAR_MS: f64 = 15.0;
/// Reply waits back off (x2) after each reply that did not come, up to this factor.
const MAX_BACKOFF: u32 = 8;
/// No reply wait longer than this, whatever was measured.
const MAX_REPLY_MS: f64 = 1000.0;
/// A data packet may pause this long between bytes at least: a latency-timer burst gap, or
/// a loaded PC that stalls the process relaying the bytes.
const MIN_GAP_MS: f64 = 100.0;

#[derive(Clone, Debug)]
pub struct Link {
    srtt_ms: f64,
    rttvar_ms: f64,
    rtt_samples: u32,
    /// Measured rate of data packets (bytes/s), 0 until measured.
    measured_bytes_per_s: f64,
    rate_samples: u32,
    /// The transport's own idea of its rate (a UART's baud rate / 10), 0 if unknown.
    pub hint_bytes_per_s: f64,
    backoff: u32,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            srtt_ms: INITIAL_SRTT_MS,
            rttvar_ms: INITIAL_RTTVAR_MS,
            rtt_samples: 0,
            measured_bytes_per_s: 0.0,
            rate_samples: 0,
            hint_bytes_per_s: 0.0,
            backoff: 1,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Link {
    /// A reply of `reply_len` bytes came `elapsed` after the request was written.
    pub fn rtt_sample(&mut self, elapsed: Duration, reply_len: usize) {
        let sample = (ms(elapsed) - self.wire_ms(reply_len)).max(0.0);
        if self.rtt_samples == 0 {
            self.srtt_ms = sample;
            self.rttvar_ms = sample / 2.0;
        } else {
            // RFC 6298 gains.
            self.rttvar_ms = 0.75 * self.rttvar_ms + 0.25 * (self.srtt_ms - sample).abs();
            self.srtt_ms = 0.875 * self.srtt_ms + 0.125 * sample;
        }
        self.rtt_samples = self.rtt_samples.saturating_add(1);
        self.backoff = 1;
    }

    /// A data packet of `len` bytes took `transfer` from its first byte to its last.
    pub fn rate_sample(&mut self, transfer: Duration, len: usize) {
        let transfer_ms = ms(transfer);
        // Too short to tell the rate apart from the round trip: the link is fast.
        if len < 512 || transfer_ms < 2.0 {
            return;
        }
        let rate = len as f64 * 1000.0 / transfer_ms;
        self.measured_bytes_per_s = if self.rate_samples == 0 {
            rate
        } else {
            0.75 * self.measured_bytes_per_s + 0.25 * rate
        };
        self.rate_samples = self.rate_samples.saturating_add(1);
    }

    /// A reply did not come in time: wait longer next time (until a reply is measured).
    pub fn reply_missed(&mut self) {
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The rate used to predict wire times: measured, else the transport's hint, else none.
    pub fn bytes_per_s(&self) -> f64 {
        if self.rate_samples > 0 {
            self.measured_bytes_per_s
        } else {
            self.hint_bytes_per_s
        }
    }

    /// Predicted time to move `len` bytes over the link, with 50% slack (0 when the rate is
    /// unknown: a fast link).
    pub fn wire_ms(&self, len: usize) -> f64 {
        let rate = self.bytes_per_s();
        if rate > 0.0 {
            1.5 * len as f64 * 1000.0 / rate
        } else {
            0.0
        }
    }

    /// How long to wait for a small reply to a packet just written.
    pub fn reply_ms(&self) -> f64 {
        ((self.srtt_ms + 4.0 * self.rttvar_ms + MARGIN_MS) * f64::from(self.backoff)).min(MAX_REPLY_MS)
    }

    /// How long the link must be quiet before a retry: stragglers of the attempt given up
    /// on come within about one round trip's spread.
    pub fn quiet_ms(&self) -> f64 {
        (self.srtt_ms / 2.0 + 2.0 * self.rttvar_ms).clamp(1.0, 50.0)
    }

    /// The longest pause allowed between two bytes of a data packet once it started.
    pub fn gap_ms(&self) -> f64 {
        self.reply_ms().max(MIN_GAP_MS)
    }

    pub fn srtt_ms(&self) -> f64 {
        self.srtt_ms
    }

    pub fn rttvar_ms(&self) -> f64 {
        self.rttvar_ms
    }

    pub fn rtt_samples(&self) -> u32 {
        self.rtt_samples
    }

    pub fn backoff(&self) -> u32 {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_replaces_the_guess_and_waits_follow_the_link() {
        let mut link = Link::default();
        assert!(link.reply_ms() > 60.0, "before any sample the wait covers a 16 ms latency timer");
        link.rtt_sample(Duration::from_micros(300), 4);
        assert!(link.reply_ms() < 5.0, "loopback: {}", link.reply_ms());
        for _ in 0..50 {
            link.rtt_sample(Duration::from_millis(33), 4);
        }
        assert!(link.reply_ms() > 33.0 && link.reply_ms() < 60.0, "{}", link.reply_ms());
    }

    #[test]
    fn missed_replies_back_off_until_a_sample() {
        let mut link = Link::default();
        link.rtt_sample(Duration::from_millis(1), 4);
        let base = link.reply_ms();
        link.reply_missed();
        link.reply_missed();
        assert!((link.reply_ms() - 4.0 * base).abs() < 1e-6);
        for _ in 0..10 {
            link.reply_missed();
        }
        assert!((link.reply_ms() - 8.0 * base).abs() < 1e-6);
        link.rtt_sample(Duration::from_millis(1), 4);
        assert!(link.reply_ms() < 2.0 * base);
    }

    #[test]
    fn rate_comes_from_the_hint_until_measured() {
        let mut link = Link::default();
        assert_eq!(link.wire_ms(1000), 0.0);
        link.hint_bytes_per_s = 960.0;
        assert!((link.wire_ms(960) - 1500.0).abs() < 1e-6);
        link.rtt_sample(Duration::from_millis(1), 4);
        link.rate_sample(Duration::from_millis(100), 10_000);
        assert!((link.bytes_per_s() - 100_000.0).abs() < 2_000.0, "{}", link.bytes_per_s());
    }
}
