//! Byte-range field helpers shared by the views.
//!
//! Every helper indexes `buf[field]` exactly once; the views call them only
//! with constant ranges inside the minimum header that `new_checked`
//! verified, so after validation they cannot panic, and the optimiser
//! removes the bounds checks once the length is known.

use core::net::Ipv4Addr;
use core::ops::Range;

/// A fixed byte range of a header.
pub(crate) type Field = Range<usize>;

#[inline(always)]
pub(crate) fn get_u16(buf: &[u8], f: Field) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&buf[f]);
    u16::from_be_bytes(b)
}

#[inline(always)]
pub(crate) fn get_u32(buf: &[u8], f: Field) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[f]);
    u32::from_be_bytes(b)
}

#[inline(always)]
pub(crate) fn get_mac(buf: &[u8], f: Field) -> crate::MacAddr {
    let mut b = [0u8; 6];
    b.copy_from_slice(&buf[f]);
    crate::MacAddr(b)
}

#[inline(always)]
pub(crate) fn get_ipv4(buf: &[u8], f: Field) -> Ipv4Addr {
    Ipv4Addr::from(get_u32(buf, f))
}

#[inline(always)]
pub(crate) fn set_u16(buf: &mut [u8], f: Field, v: u16) {
    buf[f].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn set_u32(buf: &mut [u8], f: Field, v: u32) {
    buf[f].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn set_mac(buf: &mut [u8], f: Field, v: crate::MacAddr) {
    buf[f].copy_from_slice(&v.0);
}

#[inline(always)]
pub(crate) fn set_ipv4(buf: &mut [u8], f: Field, v: Ipv4Addr) {
    buf[f].copy_from_slice(&v.octets());
}

/// `buf[start..end]` with both ends clamped into the buffer (and `end`
/// clamped to be at least `start`): never panics.
#[inline(always)]
pub(crate) fn clamp(buf: &[u8], start: usize, end: usize) -> &[u8] {
    let len = buf.len();
    let s = start.min(len);
    let e = end.clamp(s, len);
    &buf[s..e]
}

/// Mutable counterpart of [`clamp`].
#[inline(always)]
pub(crate) fn clamp_mut(buf: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let len = buf.len();
    let s = start.min(len);
    let e = end.clamp(s, len);
    &mut buf[s..e]
}
