//! CRC-16/IBM-3740 (PROTOCOL.md, "Packets"): the one checksum of every packet, computed the
//! fastest way each target allows.

/// CRC-16/IBM-3740 (also called CCITT-FALSE): poly 0x1021, init 0xFFFF, no reflection, no xorout.
/// The one CRC of the engine; how it is computed depends on the target:
/// - x86-64 (std or not: the C static library in the unix-port native module too), from
///   [`CRC16_FOLD_MIN_LEN`] bytes on, if the build assumes PCLMULQDQ and SSE4.1
///   ([`CRC16_FOLD_BUILT_IN`]) or CPUID says the CPU has them: [`crc16_folded`], carry-less
///   multiplication folding 64 bytes per step;
/// - otherwise on x86-64 and in every `std` build (host Rust programs such as the Python
///   package): [`crc16_sliced`], slice-by-16 over sixteen 256-entry tables (8 KiB, computed at
///   compile time, in `.rodata`);
/// - other targets without `std` (Cortex-M7 firmware and native modules: small flash): the crc
///   crate's single 256-entry table (512 B).
///
/// None has a panic path in the static library's object (tests/c_abi.rs checks both the host
/// and the thumbv7em object). Check value: `crc16(b"123456789") == 0x29B1`.
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= CRC16_FOLD_MIN_LEN {
        if let Some(crc) = crc16_folded(data) {
            return crc;
        }
    }
    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    return crc16_sliced(data);
    #[cfg(not(any(feature = "std", target_arch = "x86_64")))]
    return CRC16_TABLE1.checksum(data);
}

#[cfg(not(any(feature = "std", target_arch = "x86_64")))]
const CRC16_TABLE1: crc::Crc<u16, crc::Table<1>> =
    crc::Crc::<u16, crc::Table<1>>::new(&crc::CRC_16_IBM_3740);

/// The CRC polynomial (x^16 + x^12 + x^5 + 1, most significant bit first, x^16 implied).
#[cfg(any(feature = "std", target_arch = "x86_64"))]
const CRC16_POLY: u16 = 0x1021;
/// The CRC register before the first byte.
#[cfg(any(feature = "std", target_arch = "x86_64"))]
const CRC16_INIT: u16 = 0xFFFF;

/// Slice-by-16 CRC-16/IBM-3740: only built on x86-64 and with `std` (a Cortex-M7 object does
/// not carry its 8 KiB).
#[cfg(any(feature = "std", target_arch = "x86_64"))]
mod slice_by_16 {
    use super::{CRC16_INIT, CRC16_POLY};

    /// `CRC16_SLICES[k][b]`: the CRC register (from 0) after byte `b` followed by `k` zero bytes.
    /// Slice 0 is the ordinary byte table.
    static CRC16_SLICES: [[u16; 256]; 16] = crc16_slices();

    const fn crc16_slices() -> [[u16; 256]; 16] {
        let mut t = [[0u16; 256]; 16];
        let mut b = 0;
        while b < 256 {
            let mut r = (b as u16) << 8;
            let mut bit = 0;
            while bit < 8 {
                r = if r & 0x8000 != 0 { (r << 1) ^ CRC16_POLY } else { r << 1 };
                bit += 1;
            }
            t[0][b] = r;
            b += 1;
        }
        let mut k = 1;
        while k < 16 {
            let mut b = 0;
            while b < 256 {
                let prev = t[k - 1][b];
                t[k][b] = (prev << 8) ^ t[0][(prev >> 8) as usize];
                b += 1;
            }
            k += 1;
        }
        t
    }

    /// CRC-16/IBM-3740 of `data` by slice-by-16: sixteen bytes per step, each looked up in its own
    /// table (the register folds into the first two). Every index is a `u8` into a 256-entry table
    /// and the blocks are `&[u8; 16]`, so nothing can go out of bounds or panic. What [`crc16`]
    /// uses on x86-64 (below [`CRC16_FOLD_MIN_LEN`](super::CRC16_FOLD_MIN_LEN) bytes or without
    /// PCLMULQDQ) and with `std`; public so that the tests and the benchmark reach it.
    ///
    /// [`crc16`]: super::crc16
    pub fn crc16_sliced(data: &[u8]) -> u16 {
        crc16_sliced_update(CRC16_INIT, data)
    }

    /// The CRC register after `data`, starting from register `crc`.
    pub(super) fn crc16_sliced_update(mut crc: u16, data: &[u8]) -> u16 {
        let t = &CRC16_SLICES;
        let mut rest = data;
        while let Some((block, tail)) = rest.split_first_chunk::<16>() {
            // The fourteen lookups that do not depend on the register first, so that only the
            // last two wait for the previous block (a shorter dependency chain per block).
            let data = t[13][usize::from(block[2])]
                ^ t[12][usize::from(block[3])]
                ^ t[11][usize::from(block[4])]
                ^ t[10][usize::from(block[5])]
                ^ t[9][usize::from(block[6])]
                ^ t[8][usize::from(block[7])]
                ^ t[7][usize::from(block[8])]
                ^ t[6][usize::from(block[9])]
                ^ t[5][usize::from(block[10])]
                ^ t[4][usize::from(block[11])]
                ^ t[3][usize::from(block[12])]
                ^ t[2][usize::from(block[13])]
                ^ t[1][usize::from(block[14])]
                ^ t[0][usize::from(block[15])];
            let [hi, lo] = crc.to_be_bytes();
            crc = data ^ t[15][usize::from(block[0] ^ hi)] ^ t[14][usize::from(block[1] ^ lo)];
            rest = tail;
        }
        for &b in rest {
            crc = (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)];
        }
        crc
    }
}
#[cfg(any(feature = "std", target_arch = "x86_64"))]
pub use slice_by_16::crc16_sliced;

/// Whether this build may assume PCLMULQDQ, SSSE3 and SSE4.1 (built with
/// `-C target-feature=+pclmulqdq,+sse4.1` or a `-C target-cpu` that has them): then the fold is
/// used without asking CPUID.
#[cfg(target_arch = "x86_64")]
pub const CRC16_FOLD_BUILT_IN: bool =
    cfg!(all(target_feature = "pclmulqdq", target_feature = "ssse3", target_feature = "sse4.1"));

/// From this many bytes on, [`crc16`] on x86-64 folds (if the CPU can).
///
/// Unless the build assumes PCLMULQDQ ([`CRC16_FOLD_BUILT_IN`]), whether the CPU can is asked of
/// CPUID once and kept (the crate's one static, x86-64 only): CPUID is ~100 cycles on bare metal
/// but a trap to the hypervisor in a virtual machine, 3.6-4.6 µs on the AMD EPYC (Zen 4) VM this
/// was measured on, as long as slice-by-16 takes for ~20 KiB. Then the fold beats slice-by-16
/// from 16 bytes on (`make engine-bench`, ns per CRC by length).
#[cfg(target_arch = "x86_64")]
pub const CRC16_FOLD_MIN_LEN: usize = 16;

/// CRC-16/IBM-3740 of `data` by PCLMULQDQ folding, or `None` if CPUID says the CPU lacks
/// PCLMULQDQ or SSE4.1. Any length; what [`crc16`] uses on x86-64 from [`CRC16_FOLD_MIN_LEN`]
/// bytes on. CPUID is asked on the first call only.
#[cfg(target_arch = "x86_64")]
pub fn crc16_folded(data: &[u8]) -> Option<u16> {
    if !fold::cpu_has_pclmulqdq() {
        return None;
    }
    // SAFETY: CPUID just said the CPU has every feature `update` is compiled for.
    Some(unsafe { fold::update(CRC16_INIT, data) })
}

/// CRC-16/IBM-3740 of `data` by PCLMULQDQ folding, without asking CPUID (for the benchmark:
/// the fold's own speed).
///
/// # Safety
/// The CPU must have PCLMULQDQ and SSE4.1 ([`crc16_folded`] returns `Some` on it).
#[cfg(target_arch = "x86_64")]
pub unsafe fn crc16_folded_unchecked(data: &[u8]) -> u16 {
    fold::update(CRC16_INIT, data)
}

/// PCLMULQDQ folding (Intel, "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
/// Instruction", 2009), for a CRC that is not reflected.
///
/// A 16-byte block, byte-reversed into a 128-bit lane, is the polynomial A(x) of degree < 128
/// whose x^127 coefficient is the first bit on the wire (bit i of the lane is the x^i
/// coefficient: PCLMULQDQ's own order). With M(x) the whole message and the register's initial
/// value r XORed into its first 16 bits, the CRC is M(x)·x^16 mod P(x). A block followed by
/// D more bits contributes A(x)·x^D: folding A forward by D bits replaces it with
///     A_hi·(x^(D+64) mod P) + A_lo·(x^D mod P)   (degree < 80, the same mod P),
/// two multiplications of 64 by 16 bits, XORed into the block D bits later. Four lanes fold
/// 512 bits at a time (independent multiplications to keep the multiplier busy), then fold
/// into one lane, which folds the remaining 16-byte blocks. That lane (≡ the message so far) is
/// reduced to 64 bits and then, by Barrett, to the CRC register, which the byte table carries
/// over the last 0..15 bytes.
///
/// Each PCLMULQDQ takes 8 bytes, and it is the bottleneck (one per ~0.56 ns on the Zen 4 VM
/// measured: ~14.5 GB/s at most). Beyond that, messages of two periods (2·32767 bytes) or more
/// are first XORed period onto period, which the CRC cannot tell apart (see [`PERIOD`]), so a
/// 64 KiB packet costs the multiplications of 32 KiB (~25 GB/s).
#[cfg(target_arch = "x86_64")]
mod fold {
    use core::arch::x86_64::{
        __cpuid, __m128i, _mm_clmulepi64_si128, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_move_epi64,
        _mm_set_epi64x, _mm_set_epi8, _mm_shuffle_epi8, _mm_srli_si128, _mm_xor_si128,
    };

    use core::sync::atomic::{AtomicU8, Ordering};

    use super::slice_by_16::crc16_sliced_update;
    use super::CRC16_POLY;

    /// P(x) with its x^16 term.
    const POLY: u64 = 0x1_0000 | CRC16_POLY as u64;

    /// x^n mod P(x): 16 bits.
    pub(super) const fn x_pow_mod_p(n: u32) -> u64 {
        let mut r: u64 = 1;
        let mut i = 0;
        while i < n {
            r <<= 1;
            if r & 0x1_0000 != 0 {
                r ^= POLY;
            }
            i += 1;
        }
        r
    }

    /// floor(x^n / P(x)), for 16 <= n < 128.
    pub(super) const fn x_pow_div_p(n: u32) -> u128 {
        let mut rem: u128 = 1 << n;
        let mut quotient: u128 = 0;
        let mut i = n;
        while i >= 16 {
            if (rem >> i) & 1 != 0 {
                rem ^= (POLY as u128) << (i - 16);
                quotient |= 1 << (i - 16);
            }
            i -= 1;
        }
        quotient
    }

    /// (x^(D+64) mod P, x^D mod P) for folding a lane forward by `d` bits: high and low halves.
    pub(super) const fn fold_constants(d: u32) -> (u64, u64) {
        (x_pow_mod_p(d + 64), x_pow_mod_p(d))
    }

    /// Lanes folded side by side (independent multiplications keep the multiplier busy).
    const LANES: usize = 4;
    /// Bytes per step of the main loop.
    const STRIDE: usize = 16 * LANES;
    const FOLD_STRIDE: (u64, u64) = fold_constants(128 * LANES as u32);
    /// Lane i folded onto the last lane: forward by 128·(LANES - 1 - i) bits.
    const FOLD_TO_LAST: [(u64, u64); LANES - 1] = {
        let mut k = [(0, 0); LANES - 1];
        let mut i = 0;
        while i < LANES - 1 {
            k[i] = fold_constants(128 * (LANES - 1 - i) as u32);
            i += 1;
        }
        k
    };
    const FOLD_128: (u64, u64) = fold_constants(128);
    /// x^PERIOD ≡ 1 (mod P), so x^(8·PERIOD) ≡ 1 too (x has order 2^15 - 1 modulo
    /// P(x) = (x + 1)·(a primitive polynomial of degree 15)): bytes PERIOD apart weigh the same in the CRC, and a message
    /// of many periods has the CRC of their XOR. From 2·PERIOD bytes (64 KiB) on, that halves
    /// (or better) the multiplications: the XOR costs a load per 16 bytes, a fold two PCLMULQDQ.
    pub(super) const PERIOD: usize = 32767;
    const _: () = assert!(x_pow_mod_p(PERIOD as u32) == 1);

    /// x^64 mod P: folds a lane's high half onto its low half.
    const X64_MOD_P: u64 = x_pow_mod_p(64);
    /// floor(x^80 / P) = x^64 + BARRETT_MU_LOW (degree 64: the x^64 term is handled apart).
    pub(super) const BARRETT_MU_LOW: u64 = x_pow_div_p(80) as u64;
    const _: () = assert!(x_pow_div_p(80) >> 64 == 1);

    /// CPUID's answer to [`cpu_has_pclmulqdq`], asked once: 0 not yet, 1 no, 2 yes. (Two
    /// threads may both ask at first; they store the same answer.) A public, unmangled symbol:
    /// code reaches it through the GOT, the only way MicroPython's mpy_ld.py links static data
    /// into a native module (it refuses a local static in .bss or .data).
    #[no_mangle]
    pub static OMV_RPC_CPU_HAS_PCLMULQDQ: AtomicU8 = AtomicU8::new(0);

    /// PCLMULQDQ (CPUID leaf 1, ECX bit 1), SSSE3 (bit 9, PSHUFB) and SSE4.1 (bit 19).
    #[inline]
    pub(super) fn cpu_has_pclmulqdq() -> bool {
        const NEEDED: u32 = 1 << 1 | 1 << 9 | 1 << 19;
        if super::CRC16_FOLD_BUILT_IN {
            return true;
        }
        match OMV_RPC_CPU_HAS_PCLMULQDQ.load(Ordering::Relaxed) {
            2 => return true,
            1 => return false,
            _ => {}
        }
        // SAFETY: CPUID leaf 1 exists on every x86-64 CPU (`__cpuid` is safe from Rust 1.87 on).
        #[allow(unused_unsafe)]
        let ecx = unsafe { __cpuid(1) }.ecx;
        let has = ecx & NEEDED == NEEDED;
        OMV_RPC_CPU_HAS_PCLMULQDQ.store(if has { 2 } else { 1 }, Ordering::Relaxed);
        has
    }

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn constants(k: (u64, u64)) -> __m128i {
        _mm_set_epi64x(k.0 as i64, k.1 as i64)
    }

    /// `lane` folded forward by the distance of `k` (from [`fold_constants`]).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn fold(lane: __m128i, k: __m128i) -> __m128i {
        _mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x11), _mm_clmulepi64_si128(lane, k, 0x00))
    }

    /// The CRC register after `data`, starting from register `crc`. Out of line: once in the
    /// object even where the build assumes PCLMULQDQ and every caller could inline it.
    ///
    /// From two periods on, the periods are XORed together first (see [`PERIOD`]): the head
    /// before them (`len % PERIOD` bytes, which carries `crc`) is folded alone, the periods four
    /// or two at a time as one period from register 0, and the registers are added.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ, SSSE3 and SSE4.1.
    #[inline(never)]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn update(crc: u16, data: &[u8]) -> u16 {
        if data.len() < 2 * PERIOD {
            return fold_message::<1>(crc, data, data.len());
        }
        let Some((head, mut periods)) = data.split_at_checked(data.len() % PERIOD) else {
            return 0;
        };
        let mut register = fold_message::<1>(crc, head, head.len());
        while let Some((four, rest)) = periods.split_at_checked(4 * PERIOD) {
            register ^= fold_message::<4>(0, four, PERIOD);
            periods = rest;
        }
        if let Some((two, rest)) = periods.split_at_checked(2 * PERIOD) {
            register ^= fold_message::<2>(0, two, PERIOD);
            periods = rest;
        }
        if !periods.is_empty() {
            register ^= fold_message::<1>(0, periods, PERIOD);
        }
        register
    }

    /// The CRC register, from `crc`, after the `len`-byte message whose byte i is the XOR of
    /// `data[i + j·PERIOD]` over j < `COPIES` (with one copy: `data[..len]`). Returns 0 if
    /// `data` is too short for that (never, from [`update`]).
    ///
    /// Out of line: one copy for each number of copies.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ, SSSE3 and SSE4.1.
    #[inline(never)]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn fold_message<const COPIES: usize>(crc: u16, data: &[u8], len: usize) -> u16 {
        let in_bounds = COPIES >= 1
            && (COPIES == 1 || len <= PERIOD)
            && (COPIES - 1) * PERIOD <= data.len()
            && len <= data.len() - (COPIES - 1) * PERIOD;
        if !in_bounds {
            return 0;
        }
        let p = data.as_ptr();
        // Message bytes [at, at + 16) as a lane, first byte on top (in bounds: at + 16 <= len).
        let block = |at: usize| load_sum::<COPIES>(p.add(at));
        // The initial register goes onto the first 16 bits of the message.
        let init = _mm_set_epi64x(i64::from(crc) << 48, 0);
        let k128 = constants(FOLD_128);
        let mut at;
        let mut lane = if len >= STRIDE {
            let mut lanes = [init; LANES];
            for (i, l) in lanes.iter_mut().enumerate() {
                *l = block(16 * i);
            }
            lanes[0] = _mm_xor_si128(lanes[0], init);
            at = STRIDE;
            let k = constants(FOLD_STRIDE);
            while len - at >= STRIDE {
                for (i, l) in lanes.iter_mut().enumerate() {
                    *l = _mm_xor_si128(fold(*l, k), block(at + 16 * i));
                }
                at += STRIDE;
            }
            let mut one = lanes[LANES - 1];
            for (i, l) in lanes[..LANES - 1].iter().enumerate() {
                one = _mm_xor_si128(one, fold(*l, constants(FOLD_TO_LAST[i])));
            }
            one
        } else if len >= 16 {
            at = 16;
            _mm_xor_si128(block(0), init)
        } else {
            return crc16_sliced_update(crc, data.get(..len).unwrap_or(&[]));
        };
        while len - at >= 16 {
            lane = _mm_xor_si128(fold(lane, k128), block(at));
            at += 16;
        }
        let mut register = register_of(lane);
        if COPIES == 1 {
            return crc16_sliced_update(register, data.get(at..len).unwrap_or(&[]));
        }
        for i in at..len {
            let byte =
                (0..COPIES).fold(0, |b, j| b ^ data.get(i + j * PERIOD).copied().unwrap_or(0));
            register = crc16_sliced_update(register, &[byte]);
        }
        register
    }

    /// The XOR of the 16 bytes at `p`, `p + PERIOD`, ... (`COPIES` of them) as a lane, first
    /// byte on top.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn load_sum<const COPIES: usize>(p: *const u8) -> __m128i {
        let mut sum = _mm_loadu_si128(p.cast());
        for j in 1..COPIES {
            sum = _mm_xor_si128(sum, _mm_loadu_si128(p.add(j * PERIOD).cast()));
        }
        let reverse = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        _mm_shuffle_epi8(sum, reverse)
    }

    /// The CRC register of a message ≡ `lane` (mod P): `lane`·x^16 mod P.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn register_of(lane: __m128i) -> u16 {
        // Twice high half · (x^64 mod P) + low half: 128 -> 79 -> 64 bits (same value mod P).
        let k = _mm_set_epi64x(0, X64_MOD_P as i64);
        let lane = _mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x01), _mm_move_epi64(lane));
        let e = _mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x01), _mm_move_epi64(lane));
        // Barrett for T = e·x^16 (degree < 80) with μ = floor(x^80 / P) = x^64 + μ_low: the
        // quotient floor(T / P) = floor(e·μ / x^64) = e + floor(e·μ_low / x^64), exact over
        // GF(2) since deg e < 64; and T mod P = (T + q·P) mod x^16 = q·(P + x^16) mod x^16.
        let mu = _mm_set_epi64x(0, BARRETT_MU_LOW as i64);
        let q = _mm_xor_si128(e, _mm_srli_si128(_mm_clmulepi64_si128(e, mu, 0x00), 8));
        let p = _mm_set_epi64x(0, i64::from(CRC16_POLY));
        _mm_cvtsi128_si32(_mm_clmulepi64_si128(q, p, 0x00)) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "x86_64")]
    use std::{vec, vec::Vec};

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn crc_sliced_check_values() {
        assert_eq!(crc16_sliced(b"123456789"), 0x29B1);
        assert_eq!(crc16_sliced(b""), 0xFFFF);
        // 32 bytes: two full slice-by-16 blocks, no tail.
        assert_eq!(
            crc16_sliced(b"123456789123456789123456789ABCDE"),
            crc16_bitwise(b"123456789123456789123456789ABCDE")
        );
    }

    /// The definition, one bit at a time.
    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    fn crc16_bitwise(data: &[u8]) -> u16 {
        data.iter().fold(0xFFFF, |r, &b| crc16_bitwise_byte(r, b))
    }

    /// The register after one more byte, one bit at a time.
    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    fn crc16_bitwise_byte(mut r: u16, b: u8) -> u16 {
        r ^= u16::from(b) << 8;
        for _ in 0..8 {
            r = if r & 0x8000 != 0 { (r << 1) ^ 0x1021 } else { r << 1 };
        }
        r
    }

    /// Deterministic pseudo-random bytes (xorshift64).
    #[cfg(target_arch = "x86_64")]
    fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 32) as u8
            })
            .collect()
    }

    /// The folding constants against the bitwise definition: x^n mod P is the register (from 0)
    /// after a 1 bit followed by n - 16 zero bits, i.e. one byte 0x80 >> j then zero bytes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn crc_fold_constants() {
        assert_eq!(fold::x_pow_mod_p(0), 1);
        assert_eq!(fold::x_pow_mod_p(15), 0x8000);
        assert_eq!(fold::x_pow_mod_p(16), 0x1021);
        for n in 16..700u32 {
            let bits = n - 16;
            let (zero_bytes, shift) = (bits / 8, bits % 8);
            let mut r = crc16_bitwise_byte(0, 0x80 >> (7 - shift));
            for _ in 0..zero_bytes {
                r = crc16_bitwise_byte(r, 0);
            }
            assert_eq!(fold::x_pow_mod_p(n), u64::from(r), "x^{n} mod P");
        }
        assert_eq!(fold::fold_constants(512), (fold::x_pow_mod_p(576), fold::x_pow_mod_p(512)));
        // μ = floor(x^80 / P): x^80 + μ·P has degree < 16.
        let mu = fold::x_pow_div_p(80);
        let mut product = 0u128;
        for i in 0..128 {
            if (mu >> i) & 1 != 0 {
                product ^= 0x1_1021u128 << i;
            }
        }
        assert!((product ^ 1u128 << 80) < 1 << 16, "x^80 + mu*P = {:#x}", product ^ 1u128 << 80);
        assert_eq!(mu >> 64, 1);
        assert_eq!(fold::BARRETT_MU_LOW, mu as u64);
    }

    /// The fold, the dispatching `crc16` and slice-by-16 against the bitwise definition for every
    /// length 0..=2048 at 16 offsets (every alignment, every tail after 64- and 16-byte blocks),
    /// in random data; the reference grows one byte at a time.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn crc_folded_every_length() {
        assert!(
            fold::cpu_has_pclmulqdq(),
            "the test host has no PCLMULQDQ: the fold is not tested"
        );
        let buffer = random_bytes(2048 + 16, 0x9E37_79B9_7F4A_7C15);
        for offset in 0..16 {
            let data = &buffer[offset..];
            let mut expected = 0xFFFF;
            for len in 0..=2048 {
                let prefix = &data[..len];
                assert_eq!(
                    crc16_folded(prefix),
                    Some(expected),
                    "folded, offset {offset}, len {len}"
                );
                assert_eq!(crc16_sliced(prefix), expected, "sliced, offset {offset}, len {len}");
                assert_eq!(crc16(prefix), expected, "crc16, offset {offset}, len {len}");
                if let Some(&b) = data.get(len) {
                    expected = crc16_bitwise_byte(expected, b);
                }
            }
        }
    }

    /// Large buffers: 64 KiB plus every tail 0..=17 bytes and 1 MiB + 13, at odd offsets, each
    /// through the fold, the dispatching `crc16` (above its fold threshold) and the definition;
    /// all-0xFF and all-zero data too (the register's initial value cancels the first 0xFFFF).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn crc_folded_large_buffers() {
        let buffer = random_bytes((1 << 20) + 64, 7);
        for extra in 0..=17 {
            for offset in [0, 1, 7, 15] {
                let data = &buffer[offset..offset + 65536 + extra];
                let expected = crc16_bitwise(data);
                assert_eq!(
                    crc16_folded(data),
                    Some(expected),
                    "64 KiB + {extra} at offset {offset}"
                );
                assert_eq!(crc16(data), expected, "crc16, 64 KiB + {extra} at offset {offset}");
            }
        }
        let data = &buffer[3..3 + (1 << 20) + 13];
        assert_eq!(crc16(data), crc16_bitwise(data));
        for fill in [0x00u8, 0xFF] {
            let data = vec![fill; 65536 + 5];
            assert_eq!(crc16_folded(&data), Some(crc16_bitwise(&data)), "all {fill:#x}");
        }
        const { assert!(CRC16_FOLD_MIN_LEN <= 65536, "the dispatch test above must reach the fold") };
    }

    /// Around every multiple of the period up to 7 (heads of 0..=40 and PERIOD - 40.. bytes; one
    /// period alone, 2 = a pair, 3 = 2 + 1, 4 = a group of four, 5 = 4 + 1, 6 = 4 + 2,
    /// 7 = 4 + 2 + 1) and just below two periods (the plain fold), at an odd offset, against the bitwise
    /// definition of every prefix.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn crc_folded_across_periods() {
        const PERIOD: usize = fold::PERIOD;
        let buffer = random_bytes(7 * PERIOD + 64, 0xC0FF_EE00);
        let data = &buffer[5..];
        let mut expected = vec![0xFFFFu16];
        for &b in data {
            expected.push(crc16_bitwise_byte(*expected.last().unwrap(), b));
        }
        for periods in 1..=7 {
            for len in periods * PERIOD - 40..=periods * PERIOD + 40 {
                assert_eq!(
                    crc16_folded(&data[..len]),
                    Some(expected[len]),
                    "{len} bytes ({periods} periods)"
                );
            }
        }
        // Any period-long block twice: the blocks weigh the same, so they cancel, and the
        // initial register is multiplied by x^(16·PERIOD) ≡ 1: the CRC is 0xFFFF, by the
        // definition too.
        let mut twice = random_bytes(PERIOD, 3);
        twice.extend_from_within(..);
        assert_eq!(crc16_bitwise(&twice), 0xFFFF);
        assert_eq!(crc16_folded(&twice), Some(0xFFFF));
        twice[100] ^= 1;
        assert_ne!(crc16_folded(&twice), Some(0xFFFF));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn crc_folded_check_value() {
        assert_eq!(crc16_folded(b"123456789"), Some(0x29B1));
        let long: Vec<u8> = b"123456789".iter().copied().cycle().take(9 * 100).collect();
        assert_eq!(crc16_folded(&long), Some(crc16_bitwise(&long)));
        assert_eq!(unsafe { crc16_folded_unchecked(&long) }, crc16_bitwise(&long));
    }

    #[cfg(target_arch = "x86_64")]
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Random data, lengths and offsets: the fold and slice-by-16 agree, and changing
            /// one byte changes the folded CRC (what the wire check relies on).
            #[test]
            fn crc_folded_agrees(buffer in proptest::collection::vec(any::<u8>(), 0..9000), cut: prop::sample::Index, at: prop::sample::Index, flip in 1u8..=255) {
                let offset = cut.index(buffer.len() + 1).min(64);
                let data = &buffer[offset..];
                let crc = crc16_folded(data);
                prop_assert_eq!(crc, Some(crc16_sliced(data)));
                if !data.is_empty() {
                    let mut damaged = data.to_vec();
                    damaged[at.index(data.len())] ^= flip;
                    prop_assert_ne!(crc16_folded(&damaged), crc);
                }
            }
        }
    }
}
