//! The receive buffer both roles parse from: bytes in, packets out, no allocation.

use crate::wire::MAX_BUFFER_SIZE;

/// Twice the largest packet, so that a whole packet fits behind a partial one.
pub const RX_SIZE: usize = 2 * MAX_BUFFER_SIZE;

pub struct RxBuf {
    data: [u8; RX_SIZE],
    start: usize,
    end: usize,
}

impl RxBuf {
    pub const fn new() -> RxBuf {
        RxBuf { data: [0; RX_SIZE], start: 0, end: 0 }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    pub fn free(&self) -> usize {
        RX_SIZE - self.len()
    }
    /// Copies in what fits and returns how much that was.
    pub fn push(&mut self, b: &[u8]) -> usize {
        if RX_SIZE - self.end < b.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = b.len().min(RX_SIZE - self.end);
        self.data[self.end..self.end + n].copy_from_slice(&b[..n]);
        self.end += n;
        n
    }
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
    /// Drops bytes up to the next possible sync word (0xAA 0xD5); keeps a lone last 0xAA.
    pub fn skip_to_sync(&mut self) {
        let b = self.bytes();
        let mut i = 0;
        while i + 1 < b.len() && !(b[i] == 0xAA && b[i + 1] == 0xD5) {
            i += 1;
        }
        if i + 1 >= b.len() && !b.is_empty() && b[b.len() - 1] != 0xAA {
            i = b.len();
        }
        self.consume(i);
    }
}

impl Default for RxBuf {
    fn default() -> Self {
        Self::new()
    }
}
