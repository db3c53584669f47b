//! ICMPv6 (RFC 4443) and Neighbor Discovery's neighbor messages (RFC 4861).

use core::net::Ipv6Addr;

use crate::field::{self, Field};
use crate::{checksum, Error, MacAddr, Result};

mod f {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: Field = 8..24;
    pub const ND_OPTIONS: usize = 24;
}

/// ICMPv6 message types.
pub mod kind {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
}

/// NDP option types (RFC 4861 §4.6).
pub mod nd_option {
    /// Source link-layer address.
    pub const SOURCE_LL: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL: u8 = 2;
}

/// Neighbor advertisement flags (the first byte after the checksum).
pub mod na_flags {
    /// Router.
    pub const ROUTER: u8 = 0x80;
    /// Solicited.
    pub const SOLICITED: u8 = 0x40;
    /// Override.
    pub const OVERRIDE: u8 = 0x20;
}

/// A view of an ICMPv6 message. The buffer must be exactly the message
/// (the upper-layer payload): the checksum covers all of it.
///
/// ```text
///  0        8        16                32
/// +--------+--------+------------------+
/// |  type  |  code  |     checksum     |
/// +--------+--------+------------------+
/// |  message body …                    |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T> {
    buffer: T,
}

impl<T> Icmpv6Packet<T> {
    /// Type, code and checksum.
    pub const HEADER_LEN: usize = 4;
    /// Length of an echo message's header (with identifier and sequence).
    pub const ECHO_LEN: usize = 8;
    /// Length of a neighbor solicitation / advertisement before its options.
    pub const ND_LEN: usize = f::ND_OPTIONS;

    /// Wraps `buffer` without validation (for emitting).
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps `buffer` after checking that it holds the 4-byte header and,
    /// for echo and neighbor messages, their fixed part ([`Error::Truncated`]
    /// otherwise). No accessor can panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let need = match p.msg_type() {
            kind::ECHO_REQUEST | kind::ECHO_REPLY => Self::ECHO_LEN,
            kind::NEIGHBOR_SOLICIT | kind::NEIGHBOR_ADVERT => Self::ND_LEN,
            _ => Self::HEADER_LEN,
        };
        if len < need {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Message type (see [`kind`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[f::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[f::CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::CHECKSUM)
    }

    /// Does the checksum verify over the pseudo-header of `src` → `dst`?
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let s = checksum::pseudo_header_v6(src, dst, crate::ipv6::next_header::ICMPV6, len);
        checksum::fold(checksum::sum(b, s)) == 0xffff
    }

    /// Echo identifier (echo messages).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::ECHO_IDENT)
    }

    /// Echo sequence number (echo messages).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::ECHO_SEQ)
    }

    /// Neighbor advertisement flags (see [`na_flags`]).
    #[inline]
    pub fn nd_flags(&self) -> u8 {
        self.buffer.as_ref().get(f::ND_FLAGS).copied().unwrap_or(0)
    }

    /// The target address of a neighbor solicitation or advertisement.
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        let b = self.buffer.as_ref().get(f::ND_TARGET)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Some(Ipv6Addr::from(a))
    }

    /// The link-layer address option of `kind` (see [`nd_option`]) of a
    /// neighbor message, after checking every option: `Err(BadOption)` for
    /// an option of length zero (RFC 4861 §4.6: the message must be
    /// discarded) or a link-layer option that is not 6 bytes of MAC,
    /// `Err(Truncated)` for one that runs past the message.
    pub fn nd_link_layer(&self, kind: u8) -> Result<Option<MacAddr>> {
        let opts = self.buffer.as_ref().get(f::ND_OPTIONS..).unwrap_or(&[]);
        let mut found = None;
        let mut off = 0;
        while off < opts.len() {
            let (t, l) = match (opts.get(off), opts.get(off + 1)) {
                (Some(t), Some(l)) => (*t, usize::from(*l) * 8),
                _ => return Err(Error::Truncated),
            };
            if l == 0 {
                return Err(Error::BadOption);
            }
            let body = opts.get(off + 2..off + l).ok_or(Error::Truncated)?;
            if t == kind && found.is_none() {
                // Ethernet: one 8-byte unit, the MAC in its first six bytes.
                if body.len() != 6 {
                    return Err(Error::BadOption);
                }
                found = MacAddr::from_bytes(body);
            }
            off += l;
        }
        Ok(found)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Set the type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[f::TYPE] = v;
    }

    /// Set the code.
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[f::CODE] = v;
    }

    /// Compute and store the checksum over the pseudo-header of `src` →
    /// `dst` (the whole buffer is the message).
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.buffer.as_mut()[f::CHECKSUM].copy_from_slice(&[0, 0]);
        let len = self.buffer.as_ref().len() as u32;
        let s = checksum::pseudo_header_v6(src, dst, crate::ipv6::next_header::ICMPV6, len);
        let c = !checksum::fold(checksum::sum(self.buffer.as_ref(), s));
        self.buffer.as_mut()[f::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// Write a neighbor advertisement for `target` (flags from [`na_flags`])
/// with a target link-layer option carrying `mac` into `out` (at least 32
/// bytes); returns its length (32). The checksum is left to
/// [`Icmpv6Packet::fill_checksum`].
pub fn write_neighbor_advert(
    out: &mut [u8],
    target: Ipv6Addr,
    flags: u8,
    mac: MacAddr,
) -> Option<usize> {
    let b = out.get_mut(..32)?;
    b.fill(0);
    b[0] = kind::NEIGHBOR_ADVERT;
    b[4] = flags;
    b[8..24].copy_from_slice(&target.octets());
    b[24] = nd_option::TARGET_LL;
    b[25] = 1;
    b[26..32].copy_from_slice(&mac.0);
    Some(32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A neighbor solicitation for 2001:db8::1 from fe80::2 (source
    /// link-layer option 02:00:00:00:00:02), checksum filled.
    fn ns() -> Vec<u8> {
        let mut v = vec![135, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&a("2001:db8::1").octets());
        v.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 2]);
        let mut p = Icmpv6Packet::new_unchecked(&mut v[..]);
        p.fill_checksum(a("fe80::2"), a("ff02::1:ff00:1"));
        v
    }

    #[test]
    fn neighbor_solicitation_fields_options_checksum() {
        let v = ns();
        let p = Icmpv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (kind::NEIGHBOR_SOLICIT, 0));
        assert!(p.verify_checksum(a("fe80::2"), a("ff02::1:ff00:1")));
        assert!(!p.verify_checksum(a("fe80::3"), a("ff02::1:ff00:1")));
        assert_eq!(p.nd_target(), Some(a("2001:db8::1")));
        assert_eq!(
            p.nd_link_layer(nd_option::SOURCE_LL),
            Ok(Some(MacAddr([2, 0, 0, 0, 0, 2])))
        );
        assert_eq!(p.nd_link_layer(nd_option::TARGET_LL), Ok(None));
    }

    #[test]
    fn refuses_short_messages_and_bad_options() {
        let v = ns();
        assert_eq!(Icmpv6Packet::new_checked(&v[..23]), Err(Error::Truncated));
        assert_eq!(
            Icmpv6Packet::new_checked(&[128u8, 0, 0, 0][..]),
            Err(Error::Truncated)
        );
        let mut z = v.clone();
        z[25] = 0;
        let p = Icmpv6Packet::new_checked(&z[..]).unwrap();
        assert_eq!(p.nd_link_layer(1), Err(Error::BadOption), "length 0");
        let mut l = v.clone();
        l[25] = 2;
        let p = Icmpv6Packet::new_checked(&l[..]).unwrap();
        assert_eq!(p.nd_link_layer(1), Err(Error::Truncated), "past the end");
        let mut t = v.clone();
        t.truncate(30);
        let p = Icmpv6Packet::new_checked(&t[..]).unwrap();
        assert_eq!(p.nd_link_layer(1), Err(Error::Truncated));
    }

    #[test]
    fn neighbor_advert_bytes() {
        let mut b = [0u8; 32];
        let mac = MacAddr([2, 0x51, 0, 0, 0, 9]);
        let n = write_neighbor_advert(
            &mut b,
            a("2001:db8::1"),
            na_flags::SOLICITED | na_flags::OVERRIDE,
            mac,
        )
        .unwrap();
        assert_eq!(n, 32);
        let mut want = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        want.extend_from_slice(&a("2001:db8::1").octets());
        want.extend_from_slice(&[2, 1, 2, 0x51, 0, 0, 0, 9]);
        assert_eq!(&b[..], &want[..]);
        let mut p = Icmpv6Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(a("2001:db8::1"), a("fe80::2"));
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(a("2001:db8::1"), a("fe80::2")));
        assert_eq!(p.nd_link_layer(nd_option::TARGET_LL), Ok(Some(mac)));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(p) = Icmpv6Packet::new_checked(&b[..]) {
                let _ = (p.nd_target(), p.nd_link_layer(1), p.nd_link_layer(2), p.nd_flags());
                let _ = p.verify_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
                if matches!(p.msg_type(), 128 | 129) {
                    let _ = (p.echo_ident(), p.echo_seq());
                }
            }
        }
    }
}
