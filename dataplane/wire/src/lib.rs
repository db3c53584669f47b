//! Zero-copy views over the wire formats the qsplice data plane speaks:
//! Ethernet II (with up to two 802.1Q / 802.1ad tags), ARP for IPv4 over
//! Ethernet, IPv4, ICMPv4, UDP and TCP (including TCP options), plus the
//! RFC 1071 / RFC 1624 Internet checksum and the splice hot-path header
//! [`rewrite`].
//!
//! # Model
//!
//! Every protocol has a view type, e.g. [`Ipv4Packet<T>`], wrapping a buffer
//! `T: AsRef<[u8]>` (`&[u8]`, `&mut [u8]`, `Vec<u8>`, an mbuf slice, …).
//! Views never copy and never allocate. Getters are available for any
//! `T: AsRef<[u8]>`, setters and `*_mut` accessors only when additionally
//! `T: AsMut<[u8]>`. All multi-byte fields are in network byte order on the
//! wire and are converted to host order by the accessors.
//!
//! * `new_unchecked(buf)` wraps a buffer without looking at it. Use it to
//!   *emit* into a buffer you know is large enough (at least the
//!   protocol's `HEADER_LEN`).
//! * `new_checked(buf)` validates the buffer against the header (lengths,
//!   version, length fields) and returns an [`Error`] when it cannot be
//!   parsed safely.
//!
//! # The no-panic contract
//!
//! For a view returned by `new_checked`, **no accessor panics, whatever the
//! bytes are** — this is what lets the data plane run over untrusted input,
//! and it is exercised by property tests and by the fuzz targets in
//! `dataplane/fuzz`. In detail:
//!
//! * Fixed-offset field getters and setters index only within the
//!   protocol's minimum header, which `new_checked` has verified is present.
//! * Variable-length regions (`options()`, `payload()`, the checksummed
//!   ranges) are computed from the header's length fields and then *clamped
//!   to the buffer*, so they never panic even on views obtained through
//!   `new_unchecked`, or after a setter has written an inconsistent length
//!   field. After such a setter they simply return a shorter (possibly
//!   empty) slice; call `new_checked` again to re-validate.
//! * Fixed-offset accessors on a `new_unchecked` view over a buffer shorter
//!   than `HEADER_LEN` *do* panic (slice index out of bounds): that is a
//!   programming error on the emit side, not an input-dependent condition.
//!
//! Semantic checks that a router may want to count separately (checksum
//! validity, fragmentation, supported option sets) are *not* part of
//! `new_checked`; use `verify_checksum()`, `is_fragment()` and so on, and
//! map the outcome to an [`Error`] (whose [`Error::as_str`] names are stable
//! counter names).
//!
//! IPv6: [`Ipv6Packet`] (with a bounded walk of the extension headers,
//! [`Ipv6Packet::upper_layer`]), [`Icmpv6Packet`] (echo and Neighbor
//! Discovery's neighbor messages with their link-layer options), the
//! pseudo-header sum [`checksum::pseudo_header_v6`], and the derived
//! addresses of [`ipv6`] (solicited-node multicast, its MAC, the EUI-64
//! link-local address).
//!
//! The crate is `#![forbid(unsafe_code)]`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;
use core::str::FromStr;

pub use core::net::{Ipv4Addr, Ipv6Addr};

pub mod checksum;
pub mod http1;
pub mod http_response;
pub mod icmpv6;
pub mod ipv6;
pub mod ptb;
pub mod rewrite;
pub mod tls;

mod arp;
mod ethernet;
mod field;
mod icmpv4;
mod ipv4;
mod tcp;
mod udp;

pub use arp::{ArpOp, ArpPacket, ArpRepr};
pub use ethernet::{ethernet_l3, EthernetFrame, VlanHeader};
pub use icmpv4::Icmpv4Packet;
pub use icmpv6::Icmpv6Packet;
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Packet, UpperLayer};
pub use tcp::{TcpFlags, TcpOption, TcpOptionsIter, TcpPacket};
pub use udp::UdpPacket;

/// Why a buffer could not be parsed (or was rejected by a caller's policy).
///
/// The set of variants may grow; match with a wildcard arm.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed header (or than a length the
    /// header itself requires).
    Truncated,
    /// An IP version field other than the one expected.
    BadVersion,
    /// A header-length field (IPv4 IHL, TCP data offset) is below the minimum
    /// or points past the end of the buffer.
    BadHeaderLen,
    /// A total-length field (IPv4 total length, UDP length) is smaller than
    /// the header or larger than the buffer.
    BadTotalLen,
    /// A checksum did not verify.
    BadChecksum,
    /// A malformed option (TCP option length < 2, past the options area, or
    /// the wrong length for a known kind).
    BadOption,
    /// Well-formed, but a variant this crate does not handle (ARP for a
    /// non-Ethernet/IPv4 pair, more than two VLAN tags, …).
    Unsupported,
    /// An IP fragment where a whole datagram is required.
    Fragmented,
}

impl Error {
    /// A stable `snake_case` name for the error, suitable as a counter or
    /// metric label (`"truncated"`, `"bad_checksum"`, …). These strings are
    /// part of the API and will not change.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadHeaderLen => "bad_header_len",
            Error::BadTotalLen => "bad_total_len",
            Error::BadChecksum => "bad_checksum",
            Error::BadOption => "bad_option",
            Error::Unsupported => "unsupported",
            Error::Fragmented => "fragmented",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Truncated => "truncated packet",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLen => "bad header length",
            Error::BadTotalLen => "bad total length",
            Error::BadChecksum => "bad checksum",
            Error::BadOption => "malformed option",
            Error::Unsupported => "unsupported packet variant",
            Error::Fragmented => "fragmented packet",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// Result type of this crate's parsers.
pub type Result<T> = core::result::Result<T, Error>;

/// EtherType values (IEEE 802 numbers) used by the data plane.
pub mod ethertype {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (S-tag, "QinQ").
    pub const QINQ: u16 = 0x88a8;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x86dd;
}

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
pub mod ip_proto {
    /// Internet Control Message Protocol (v4).
    pub const ICMP: u8 = 1;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
}

/// A 48-bit IEEE 802 MAC address.
///
/// Displays and parses as six colon-separated hex octets,
/// `"aa:bb:cc:dd:ee:ff"` (parsing also accepts `-` as separator and either
/// case).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00` (e.g. the unknown target of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Builds an address from the first six bytes of `bytes`, or `None` if
    /// `bytes` is shorter than six.
    pub fn from_bytes(bytes: &[u8]) -> Option<MacAddr> {
        let b: &[u8; 6] = bytes.first_chunk()?;
        Some(MacAddr(*b))
    }

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is the all-ones broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group (I/G) bit is set; broadcast is also multicast.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual address: group bit clear and not all
    /// zeros.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::ZERO
    }

    /// Whether the locally-administered (U/L) bit is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The error returned when parsing a [`MacAddr`] from a string fails.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MAC address syntax (expected aa:bb:cc:dd:ee:ff)")
    }
}

impl std::error::Error for ParseMacError {}

impl FromStr for MacAddr {
    type Err = ParseMacError;

    /// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`: exactly six groups
    /// of one or two hex digits, one separator kind throughout.
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for slot in out.iter_mut() {
            let p = parts.next().ok_or(ParseMacError)?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(ParseMacError);
            }
            *slot = u8::from_str_radix(p, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_parse() {
        let m = MacAddr([0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x0f]);
        assert_eq!(m.to_string(), "aa:bb:0c:dd:ee:0f");
        assert_eq!("aa:bb:0c:dd:ee:0f".parse::<MacAddr>(), Ok(m));
        assert_eq!("AA-BB-C-DD-EE-F".parse::<MacAddr>(), Ok(m));
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:fff",
            "aa:bb:cc:dd:ee:gg",
            "aa:bb-cc:dd:ee:ff",
            "aa::cc:dd:ee:ff",
            "+a:bb:cc:dd:ee:ff",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacError), "{bad:?}");
        }
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        assert!(!MacAddr::ZERO.is_unicast());
        assert!(!MacAddr::ZERO.is_multicast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_unicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_local());
        assert_eq!(MacAddr::default(), MacAddr::ZERO);
        assert_eq!(
            MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn error_names_are_stable() {
        let all = [
            (Error::Truncated, "truncated"),
            (Error::BadVersion, "bad_version"),
            (Error::BadHeaderLen, "bad_header_len"),
            (Error::BadTotalLen, "bad_total_len"),
            (Error::BadChecksum, "bad_checksum"),
            (Error::BadOption, "bad_option"),
            (Error::Unsupported, "unsupported"),
            (Error::Fragmented, "fragmented"),
        ];
        for (e, s) in all {
            assert_eq!(e.as_str(), s);
            assert!(!e.to_string().is_empty());
        }
    }
}
