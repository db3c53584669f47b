//! The Internet checksum: RFC 1071 computation and RFC 1624 incremental
//! update.
//!
//! The checksum is the one's-complement of the one's-complement sum of the
//! data taken as big-endian 16-bit words (an odd trailing byte is padded with
//! a zero byte on the right). The functions here are split so that partial
//! sums can be chained:
//!
//! ```
//! use qsplice_wire::{checksum, Ipv4Addr};
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let segment = [0u8; 20];
//! let s = checksum::pseudo_header_v4(src, dst, 6, segment.len() as u16);
//! let csum = !checksum::fold(checksum::sum(&segment, s));
//! # let _ = csum;
//! ```
//!
//! When chaining `sum(b, sum(a, 0))`, `a` must have even length (otherwise
//! the words of `b` are misaligned), exactly as on the wire.

use core::net::Ipv4Addr;

/// Adds `data` (big-endian 16-bit words, odd trailing byte zero-padded) to
/// the running one's-complement sum `initial` and returns the new,
/// *unfolded* sum.
///
/// The result is at most `3 * 0xffff`, so a few results can be added together
/// with plain `u32` addition before [`fold`]ing. Works on any length and any
/// alignment; internally it adds 8 bytes per step (in native byte order, which
/// RFC 1071 §2(B) shows is equivalent) into a 64-bit accumulator.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let native = fold64(sum_native(data));
    let be = if cfg!(target_endian = "little") {
        native.swap_bytes()
    } else {
        native
    };
    (initial & 0xffff) + (initial >> 16) + u32::from(be)
}

/// One's-complement sum of `data` read as native-endian words, as a u64 that
/// has not been folded yet. Never overflows: the input is processed in 1 GiB
/// blocks, each of which adds less than 2^60.
#[inline]
fn sum_native(data: &[u8]) -> u64 {
    // Each 8-byte step adds two 32-bit halves (< 2^33); 2^27 steps per block
    // keeps the block sum < 2^60. Block boundaries are multiples of 8, so
    // word alignment is preserved.
    const BLOCK: usize = 1 << 30;
    let mut total: u64 = 0;
    for block in data.chunks(BLOCK) {
        let mut acc: u64 = 0;
        let mut chunks = block.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            let x = u64::from_ne_bytes(b);
            acc += (x & 0xffff_ffff) + (x >> 32);
        }
        // The 0..7 tail bytes (at an offset that is a multiple of 8, so
        // 16-bit words stay aligned) as a native 32-bit word, a native
        // 16-bit word and a last byte padded with zero on the right (RFC
        // 1071's odd-byte rule) — fixed-size loads, not a variable-length
        // copy (a `memcpy` call and a store-forwarding stall per packet).
        let rest = chunks.remainder();
        let mut i = 0;
        if rest.len() >= 4 {
            acc += u64::from(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]));
            i = 4;
        }
        if rest.len() >= i + 2 {
            acc += u64::from(u16::from_ne_bytes([rest[i], rest[i + 1]]));
            i += 2;
        }
        if let Some(&last) = rest.get(i) {
            acc += u64::from(u16::from_ne_bytes([last, 0]));
        }
        total += u64::from(fold64(acc));
    }
    total
}

/// End-around-carry fold of a 64-bit sum to 16 bits. Non-zero stays non-zero.
#[inline(always)]
const fn fold64(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Folds a 32-bit one's-complement sum to 16 bits with end-around carry.
/// The result is **not** complemented (see [`checksum`]).
#[inline(always)]
pub const fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`: `!fold(sum(data, 0))`.
///
/// To verify a header that contains its own checksum field, check that the
/// checksum over the whole header is `0`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// [`checksum`] of exactly 20 bytes (an IPv4 header without options, the
/// one every packet carries): five word loads and one fold, without the
/// general loop's set-up.
#[inline(always)]
pub fn checksum20(h: &[u8; 20]) -> u16 {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let native = fold64(w(0) + w(4) + w(8) + w(12) + w(16));
    let be = if cfg!(target_endian = "little") {
        native.swap_bytes()
    } else {
        native
    };
    !be
}

/// The unfolded sum of the IPv4 pseudo-header used by TCP and UDP
/// (RFC 793 §3.1, RFC 768): source, destination, zero, protocol, and the
/// upper-layer length `len` (header plus data).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(proto) + u32::from(len)
}

/// The IPv6 pseudo-header's unfolded sum (RFC 8200 §8.1): source and
/// destination addresses, the upper-layer packet length (32 bits) and the
/// next-header value. Add the upper-layer packet with [`sum`].
#[inline]
pub fn pseudo_header_v6(
    src: core::net::Ipv6Addr,
    dst: core::net::Ipv6Addr,
    next_header: u8,
    len: u32,
) -> u32 {
    let mut s = 0u32;
    for w in src.segments().iter().chain(dst.segments().iter()) {
        s += u32::from(*w);
    }
    s + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

/// RFC 1624 incremental update (equation 3, `HC' = ~(~HC + ~m + m')`) of
/// checksum `csum` after one 16-bit word of the covered data changed from
/// `old` to `new`.
///
/// The result equals a full recomputation whenever the covered data is not
/// all-zero before or after the change (which holds for every IPv4 header
/// and for anything covered by a TCP/UDP pseudo-header): it never produces
/// the `0x0000`-vs-`0xffff` discrepancy of RFC 1141's equation. For UDP,
/// where a transmitted `0` means "no checksum", skip the update when the old
/// checksum is `0` and map a computed `0` to `0xffff`.
///
/// A word straddling an odd offset must be passed as the aligned big-endian
/// word(s) containing it.
#[inline(always)]
pub const fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    !fold(!csum as u32 + !old as u32 + new as u32)
}

/// [`update_u16`] for a 32-bit field at an even offset (two adjacent words),
/// e.g. a TCP sequence number.
#[inline(always)]
pub const fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let s = !csum as u32 + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold(s)
}

/// [`update_u32`] for an IPv4 address, e.g. after NAT of the destination
/// (apply it to the IPv4 header checksum *and* to the TCP/UDP checksum,
/// whose pseudo-header covers the addresses).
#[inline(always)]
pub fn update_addr(csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_u32(csum, u32::from(old), u32::from(new))
}

/// Several RFC 1624 updates summed and folded once: the changes of one
/// header rewrite (addresses, ports, sequence numbers, options) accumulate
/// here, and [`Delta::apply`] turns a checksum into the rewritten one —
/// what a chain of [`update_u16`] / [`update_u32`] calls computes, with one
/// fold instead of one per field. The same `Delta` of the address changes
/// applies to the IPv4 header checksum and to the TCP/UDP one.
///
/// Fields must sit at even offsets of the checksummed area (a field at an
/// odd offset is passed as the aligned words containing it). 32-bit words
/// go in whole: `!x` of a 32-bit word is `-x` modulo `2^16 - 1` as well.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// No change.
    pub const NONE: Delta = Delta(0);

    /// A 16-bit word changed from `old` to `new`.
    #[inline(always)]
    #[must_use]
    pub const fn u16(self, old: u16, new: u16) -> Delta {
        Delta(self.0 + !old as u64 + new as u64)
    }

    /// A 32-bit field (two adjacent words) changed from `old` to `new`.
    #[inline(always)]
    #[must_use]
    pub const fn u32(self, old: u32, new: u32) -> Delta {
        Delta(self.0 + !old as u64 + new as u64)
    }

    /// A block of words changed from the bytes `old` to `new` (equal
    /// lengths, an even offset; e.g. IPv6 addresses).
    #[inline]
    #[must_use]
    pub fn bytes(self, old: &[u8], new: &[u8]) -> Delta {
        Delta(self.0 + u64::from(!fold(sum(old, 0))) + u64::from(sum(new, 0)))
    }

    /// Both sets of changes.
    #[inline(always)]
    #[must_use]
    pub const fn and(self, other: Delta) -> Delta {
        Delta(self.0 + other.0)
    }

    /// The checksum `csum` after every change (RFC 1624 eqn. 3,
    /// `HC' = ~(~HC + Σ~m + Σm')`).
    #[inline(always)]
    pub const fn apply(self, csum: u16) -> u16 {
        !fold64(!csum as u64 + self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward byte-pair reference.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u64 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u64::from(u16::from_be_bytes([data[i], data[i + 1]]));
            i += 2;
        }
        if i < data.len() {
            s += u64::from(data[i]) << 8;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(checksum(&d), 0x220d);
    }

    #[test]
    fn empty_and_zero() {
        assert_eq!(sum(&[], 0), 0);
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0; 13]), 0xffff);
        assert_eq!(fold(sum(&[0xff, 0xff], 0)), 0xffff);
        assert_eq!(checksum(&[0xff, 0xff]), 0);
        assert_eq!(fold(sum(&[0xff; 10], 0)), 0xffff);
        assert_eq!(fold(sum(&[0xff; 9], 0)), 0xff00);
    }

    #[test]
    fn odd_lengths_and_offsets_match_naive() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for end in start..data.len() {
                let d = &data[start..end];
                assert_eq!(fold(sum(d, 0)), naive(d), "{start}..{end}");
            }
        }
        let ones = [0xffu8; 257];
        for n in 0..ones.len() {
            assert_eq!(fold(sum(&ones[..n], 0)), naive(&ones[..n]), "ones {n}");
        }
    }

    #[test]
    fn initial_is_added_and_chains() {
        let d = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(
            fold(sum(&d, 0xffff_ffff)),
            fold(sum(&d, 0) + fold(0xffff_ffff) as u32)
        );
        let (a, b) = d.split_at(2);
        assert_eq!(fold(sum(b, sum(a, 0))), fold(sum(&d, 0)));
    }

    #[test]
    fn pseudo_header() {
        let s = pseudo_header_v4(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            6,
            40,
        );
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[192, 168, 0, 1, 10, 0, 0, 2, 0, 6, 0, 40]);
        assert_eq!(fold(s), naive(&bytes));
    }

    #[test]
    fn update_examples() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285, HC' = 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        let mut d = [
            0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0,
            0, 2,
        ];
        let c = checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&d), 0);
        let old = u32::from_be_bytes([d[16], d[17], d[18], d[19]]);
        d[16..20].copy_from_slice(&[172, 16, 9, 9]);
        let c2 = update_u32(c, old, u32::from_be_bytes([172, 16, 9, 9]));
        d[10..12].copy_from_slice(&c2.to_be_bytes());
        assert_eq!(checksum(&d), 0);
    }

    proptest::proptest! {
        #[test]
        fn checksum20_is_checksum(h in proptest::prelude::any::<[u8; 20]>()) {
            proptest::prop_assert_eq!(checksum20(&h), checksum(&h));
            proptest::prop_assert_eq!(checksum20(&h), !naive(&h));
        }
    }

    #[test]
    fn delta_rfc1624_example() {
        assert_eq!(Delta::NONE.u16(0x5555, 0x3285).apply(0xdd2f), 0x0000);
        assert_eq!(Delta::NONE.apply(0x1234), 0x1234);
    }

    proptest::proptest! {
        /// Any set of 16-bit, 32-bit and block changes at even offsets,
        /// accumulated in one `Delta`: the result is the full recomputation
        /// (the buffer is never all-zero: its first word is fixed non-zero)
        /// and the chain of single-field updates.
        #[test]
        fn delta_matches_recompute_and_chained_updates(
            mut data in proptest::collection::vec(proptest::prelude::any::<u8>(), 24..200),
            changes in proptest::collection::vec(
                (0usize..100, 0u8..3, proptest::prelude::any::<[u8; 8]>()), 0..12),
        ) {
            data[0] = 0x45;
            let n = data.len() & !1;
            data.truncate(n);
            let c0 = checksum(&data);
            let (mut d, mut chained) = (Delta::NONE, c0);
            for (at, kind, new) in changes {
                let at = (at * 2) % (n - 8);
                match kind {
                    0 => {
                        let old = u16::from_be_bytes([data[at], data[at + 1]]);
                        let v = u16::from_be_bytes([new[0], new[1]]);
                        d = d.u16(old, v);
                        chained = update_u16(chained, old, v);
                        data[at..at + 2].copy_from_slice(&new[..2]);
                    }
                    1 => {
                        let old = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
                        let v = u32::from_be_bytes(new[..4].try_into().unwrap());
                        d = d.u32(old, v);
                        chained = update_u32(chained, old, v);
                        data[at..at + 4].copy_from_slice(&new[..4]);
                    }
                    _ => {
                        let old: [u8; 8] = data[at..at + 8].try_into().unwrap();
                        d = d.and(Delta::NONE.bytes(&old, &new));
                        chained = !fold(u32::from(!chained) + u32::from(!fold(sum(&old, 0))) + sum(&new, 0));
                        data[at..at + 8].copy_from_slice(&new);
                    }
                }
            }
            proptest::prop_assert_eq!(d.apply(c0), checksum(&data));
            proptest::prop_assert_eq!(d.apply(c0), chained);
        }
    }
}
