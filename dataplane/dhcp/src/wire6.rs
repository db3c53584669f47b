//! The DHCPv6 message format (RFC 8415 §8–9, §21 options; RFC 4649
//! Remote-ID), the ground the DHCPv6 tester and server stand on.
//!
//! * [`Dhcp6Packet`] is a zero-copy view of a client/server message
//!   (`msg-type`, 24-bit `transaction-id`, options) or a relay message
//!   (`msg-type`, `hop-count`, `link-address`, `peer-address`, options);
//!   [`Dhcp6Packet::new_checked`] validates the header and afterwards no
//!   accessor panics.
//! * [`Options`] iterates `(code, value)` TLVs bounded by their area: an
//!   option overrunning it is an [`Error`], never a panic. Options that
//!   carry options (IA_NA, IA_PD, IAADDR, IAPREFIX, Relay Message) expose
//!   their inner area the same way ([`IaNa::options`], …).
//! * [`Writer`] appends options to a caller's buffer, nesting included
//!   ([`Writer::begin`] / [`Writer::end`] patch the length), with no
//!   allocation; every write checks the room first.
//!
//! ```text
//!  client/server message            relay message (RELAY-FORW / RELAY-REPL)
//! +--------+-----------------+     +--------+--------+------------------+
//! |msg-type| transaction-id  |     |msg-type|hop-cnt | link-address (16)|
//! +--------+-----------------+     +--------+--------+------------------+
//! | options (code u16, len u16, value) ...   | peer-address (16) | options
//! ```

use core::fmt;
use core::net::Ipv6Addr;

/// The UDP port of clients.
pub const CLIENT_PORT: u16 = 546;
/// The UDP port of servers and relay agents.
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (link-scoped multicast).
pub const ALL_RELAYS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// Message types (RFC 8415 §7.3).
pub mod msg {
    #![allow(missing_docs)] // the RFC's names
    pub const SOLICIT: u8 = 1;
    pub const ADVERTISE: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const CONFIRM: u8 = 4;
    pub const RENEW: u8 = 5;
    pub const REBIND: u8 = 6;
    pub const REPLY: u8 = 7;
    pub const RELEASE: u8 = 8;
    pub const DECLINE: u8 = 9;
    pub const RECONFIGURE: u8 = 10;
    pub const INFORMATION_REQUEST: u8 = 11;
    pub const RELAY_FORW: u8 = 12;
    pub const RELAY_REPL: u8 = 13;
}

/// Option codes (RFC 8415 §21, RFC 3646 DNS servers, RFC 4649 Remote-ID).
pub mod opt {
    #![allow(missing_docs)] // the RFC's names
    pub const CLIENTID: u16 = 1;
    pub const SERVERID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IA_TA: u16 = 4;
    pub const IAADDR: u16 = 5;
    pub const ORO: u16 = 6;
    pub const PREFERENCE: u16 = 7;
    pub const ELAPSED_TIME: u16 = 8;
    pub const RELAY_MSG: u16 = 9;
    pub const AUTH: u16 = 11;
    pub const UNICAST: u16 = 12;
    pub const STATUS_CODE: u16 = 13;
    pub const RAPID_COMMIT: u16 = 14;
    pub const INTERFACE_ID: u16 = 18;
    pub const RECONF_ACCEPT: u16 = 20;
    pub const DNS_SERVERS: u16 = 23;
    pub const IA_PD: u16 = 25;
    pub const IAPREFIX: u16 = 26;
    pub const REMOTE_ID: u16 = 37;
    pub const SOL_MAX_RT: u16 = 82;
    pub const INF_MAX_RT: u16 = 83;
}

/// Status codes (RFC 8415 §21.13).
pub mod status {
    #![allow(missing_docs)] // the RFC's names
    pub const SUCCESS: u16 = 0;
    pub const UNSPEC_FAIL: u16 = 1;
    pub const NO_ADDRS_AVAIL: u16 = 2;
    pub const NO_BINDING: u16 = 3;
    pub const NOT_ON_LINK: u16 = 4;
    pub const USE_MULTICAST: u16 = 5;
    pub const NO_PREFIX_AVAIL: u16 = 6;
}

/// Why bytes are not a DHCPv6 message (or an option not what its code says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed header.
    Truncated,
    /// An option's length runs past its area (or a fixed-size option is
    /// shorter than its fields).
    BadOption,
    /// `msg-type` 0 or unassigned.
    BadType,
    /// No room in the output buffer.
    NoRoom,
}

impl Error {
    /// A stable `snake_case` name (counters, metric labels).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadOption => "bad_option",
            Error::BadType => "bad_type",
            Error::NoRoom => "no_room",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

fn u16at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
fn u32at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn addr_at(b: &[u8], i: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[i..i + 16]);
    Ipv6Addr::from(a)
}

/// A relay message's header length (type, hop count, two addresses).
pub const RELAY_HEADER: usize = 34;
/// A client/server message's header length (type, transaction id).
pub const HEADER: usize = 4;

/// Whether `t` is a relay message type.
pub fn is_relay(t: u8) -> bool {
    t == msg::RELAY_FORW || t == msg::RELAY_REPL
}

/// A DHCPv6 message (client/server or relay), validated.
#[derive(Clone, Copy, Debug)]
pub struct Dhcp6Packet<'a> {
    b: &'a [u8],
}

impl<'a> Dhcp6Packet<'a> {
    /// Check the header (length, a known `msg-type`) and that the options
    /// area parses as TLVs to its end.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, Error> {
        let t = *b.first().ok_or(Error::Truncated)?;
        if !(msg::SOLICIT..=msg::RELAY_REPL).contains(&t) {
            return Err(Error::BadType);
        }
        let need = if is_relay(t) { RELAY_HEADER } else { HEADER };
        if b.len() < need {
            return Err(Error::Truncated);
        }
        let p = Dhcp6Packet { b };
        for o in p.options() {
            o?;
        }
        Ok(p)
    }

    /// `msg-type`.
    pub fn msg_type(&self) -> u8 {
        self.b[0]
    }

    /// A relay message (RELAY-FORW / RELAY-REPL).
    pub fn is_relay(&self) -> bool {
        is_relay(self.msg_type())
    }

    /// `transaction-id` (24 bits; 0 for relay messages).
    pub fn xid(&self) -> u32 {
        if self.is_relay() {
            return 0;
        }
        u32::from_be_bytes([0, self.b[1], self.b[2], self.b[3]])
    }

    /// `hop-count` (relay messages; 0 otherwise).
    pub fn hop_count(&self) -> u8 {
        if self.is_relay() {
            self.b[1]
        } else {
            0
        }
    }

    /// `link-address` (relay messages).
    pub fn link_address(&self) -> Option<Ipv6Addr> {
        self.is_relay().then(|| addr_at(self.b, 2))
    }

    /// `peer-address` (relay messages).
    pub fn peer_address(&self) -> Option<Ipv6Addr> {
        self.is_relay().then(|| addr_at(self.b, 18))
    }

    /// The options area.
    pub fn options_raw(&self) -> &'a [u8] {
        &self.b[if self.is_relay() {
            RELAY_HEADER
        } else {
            HEADER
        }..]
    }

    /// The options, in order.
    pub fn options(&self) -> Options<'a> {
        Options::new(self.options_raw())
    }

    /// The first option with `code`.
    pub fn option(&self, code: u16) -> Option<&'a [u8]> {
        find(self.options_raw(), code)
    }

    /// Client Identifier (a DUID).
    pub fn client_id(&self) -> Option<&'a [u8]> {
        self.option(opt::CLIENTID)
    }

    /// Server Identifier (a DUID).
    pub fn server_id(&self) -> Option<&'a [u8]> {
        self.option(opt::SERVERID)
    }

    /// Elapsed Time, hundredths of a second (malformed: `None`).
    pub fn elapsed_time(&self) -> Option<u16> {
        self.option(opt::ELAPSED_TIME)
            .filter(|v| v.len() == 2)
            .map(|v| u16at(v, 0))
    }

    /// Rapid Commit present.
    pub fn rapid_commit(&self) -> bool {
        self.option(opt::RAPID_COMMIT).is_some()
    }

    /// Server Preference (malformed: `None`).
    pub fn preference(&self) -> Option<u8> {
        self.option(opt::PREFERENCE)
            .filter(|v| v.len() == 1)
            .map(|v| v[0])
    }

    /// The top-level Status Code (absent: success is implied).
    pub fn status(&self) -> Option<(u16, &'a [u8])> {
        self.option(opt::STATUS_CODE).and_then(status_of)
    }

    /// Every IA_NA.
    pub fn ia_nas(&self) -> impl Iterator<Item = IaNa<'a>> + 'a {
        self.options()
            .filter_map(Result::ok)
            .filter(|(c, _)| *c == opt::IA_NA)
            .filter_map(|(_, v)| IaNa::parse(v).ok())
    }

    /// Every IA_PD.
    pub fn ia_pds(&self) -> impl Iterator<Item = IaNa<'a>> + 'a {
        self.options()
            .filter_map(Result::ok)
            .filter(|(c, _)| *c == opt::IA_PD)
            .filter_map(|(_, v)| IaNa::parse(v).ok())
    }

    /// A relay message's inner message (Relay Message option).
    pub fn relay_msg(&self) -> Option<Result<Dhcp6Packet<'a>, Error>> {
        self.option(opt::RELAY_MSG).map(Dhcp6Packet::new_checked)
    }
}

/// Status Code option value → (code, message).
pub fn status_of(v: &[u8]) -> Option<(u16, &[u8])> {
    (v.len() >= 2).then(|| (u16at(v, 0), &v[2..]))
}

/// The first option `code` in options area `area` (a malformed option
/// ends the search).
pub fn find(area: &[u8], code: u16) -> Option<&[u8]> {
    Options::new(area)
        .map_while(Result::ok)
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v)
}

/// The TLVs of an options area.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Options<'a> {
    /// The options of `area`.
    pub fn new(area: &'a [u8]) -> Self {
        Options {
            rest: area,
            failed: false,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.failed = true;
            return Some(Err(Error::BadOption));
        }
        let code = u16at(self.rest, 0);
        let len = usize::from(u16at(self.rest, 2));
        let Some(v) = self.rest.get(4..4 + len) else {
            self.failed = true;
            return Some(Err(Error::BadOption));
        };
        self.rest = &self.rest[4 + len..];
        Some(Ok((code, v)))
    }
}

/// An IA_NA or IA_PD (the same fixed fields: IAID, T1, T2, options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaNa<'a> {
    /// Identity association ID.
    pub iaid: u32,
    /// Renew time, s.
    pub t1: u32,
    /// Rebind time, s.
    pub t2: u32,
    options: &'a [u8],
}

impl<'a> IaNa<'a> {
    /// From an IA_NA / IA_PD option value.
    pub fn parse(v: &'a [u8]) -> Result<Self, Error> {
        if v.len() < 12 {
            return Err(Error::BadOption);
        }
        Ok(IaNa {
            iaid: u32at(v, 0),
            t1: u32at(v, 4),
            t2: u32at(v, 8),
            options: &v[12..],
        })
    }

    /// Its options (IAADDR / IAPREFIX, Status Code).
    pub fn options(&self) -> Options<'a> {
        Options::new(self.options)
    }

    /// Its Status Code (absent: success).
    pub fn status(&self) -> Option<(u16, &'a [u8])> {
        find(self.options, opt::STATUS_CODE).and_then(status_of)
    }

    /// Its addresses (IA_NA).
    pub fn addrs(&self) -> impl Iterator<Item = IaAddr> + 'a {
        self.options()
            .map_while(Result::ok)
            .filter(|(c, _)| *c == opt::IAADDR)
            .filter_map(|(_, v)| IaAddr::parse(v).ok())
    }

    /// Its prefixes (IA_PD).
    pub fn prefixes(&self) -> impl Iterator<Item = IaPrefix> + 'a {
        self.options()
            .map_while(Result::ok)
            .filter(|(c, _)| *c == opt::IAPREFIX)
            .filter_map(|(_, v)| IaPrefix::parse(v).ok())
    }
}

/// An IA Address option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime, s.
    pub preferred: u32,
    /// Valid lifetime, s.
    pub valid: u32,
}

impl IaAddr {
    /// From an IAADDR option value (its own options ignored).
    pub fn parse(v: &[u8]) -> Result<Self, Error> {
        if v.len() < 24 {
            return Err(Error::BadOption);
        }
        Ok(IaAddr {
            addr: addr_at(v, 0),
            preferred: u32at(v, 16),
            valid: u32at(v, 20),
        })
    }
}

/// An IA Prefix option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaPrefix {
    /// Preferred lifetime, s.
    pub preferred: u32,
    /// Valid lifetime, s.
    pub valid: u32,
    /// Prefix length, 0..=128.
    pub len: u8,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

impl IaPrefix {
    /// From an IAPREFIX option value (its own options ignored; a prefix
    /// length over 128 is malformed).
    pub fn parse(v: &[u8]) -> Result<Self, Error> {
        if v.len() < 25 || v[8] > 128 {
            return Err(Error::BadOption);
        }
        Ok(IaPrefix {
            preferred: u32at(v, 0),
            valid: u32at(v, 4),
            len: v[8],
            prefix: addr_at(v, 9),
        })
    }
}

/// A DUID (RFC 8415 §11), as far as its type tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duid<'a> {
    /// DUID-LLT: hardware type, time, link-layer address.
    #[allow(missing_docs)]
    Llt {
        htype: u16,
        time: u32,
        lladdr: &'a [u8],
    },
    /// DUID-EN: enterprise number, identifier.
    #[allow(missing_docs)]
    En { enterprise: u32, id: &'a [u8] },
    /// DUID-LL: hardware type, link-layer address.
    #[allow(missing_docs)]
    Ll { htype: u16, lladdr: &'a [u8] },
    /// DUID-UUID.
    Uuid([u8; 16]),
    /// Another type (kept opaque, as servers must).
    #[allow(missing_docs)]
    Other { kind: u16, data: &'a [u8] },
}

impl<'a> Duid<'a> {
    /// Read a DUID (1..=130 bytes of type and data; RFC 8415 §11.1).
    pub fn parse(v: &'a [u8]) -> Result<Self, Error> {
        if v.len() < 3 || v.len() > 130 {
            return Err(Error::BadOption);
        }
        let kind = u16at(v, 0);
        Ok(match kind {
            1 if v.len() >= 8 => Duid::Llt {
                htype: u16at(v, 2),
                time: u32at(v, 4),
                lladdr: &v[8..],
            },
            2 if v.len() >= 6 => Duid::En {
                enterprise: u32at(v, 2),
                id: &v[6..],
            },
            3 if v.len() >= 4 => Duid::Ll {
                htype: u16at(v, 2),
                lladdr: &v[4..],
            },
            4 if v.len() == 18 => {
                let mut u = [0u8; 16];
                u.copy_from_slice(&v[2..]);
                Duid::Uuid(u)
            }
            1..=4 => return Err(Error::BadOption),
            _ => Duid::Other {
                kind,
                data: &v[2..],
            },
        })
    }
}

/// A DUID-LL for an Ethernet address (what clients emulated per MAC use).
pub fn duid_ll(mac: [u8; 6]) -> [u8; 10] {
    let mut d = [0u8; 10];
    d[..4].copy_from_slice(&[0, 3, 0, 1]);
    d[4..].copy_from_slice(&mac);
    d
}

/// Writes a DHCPv6 message into a caller's buffer.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Open nested options (start offsets of their headers).
    open: [usize; 4],
    depth: usize,
}

impl<'b> Writer<'b> {
    /// A client/server message `msg_type` with transaction id `xid` (low 24
    /// bits).
    pub fn message(buf: &'b mut [u8], msg_type: u8, xid: u32) -> Result<Self, Error> {
        let h = buf.get_mut(..HEADER).ok_or(Error::NoRoom)?;
        h[0] = msg_type;
        h[1..4].copy_from_slice(&xid.to_be_bytes()[1..]);
        Ok(Writer {
            buf,
            len: HEADER,
            open: [0; 4],
            depth: 0,
        })
    }

    /// A relay message.
    pub fn relay(
        buf: &'b mut [u8],
        msg_type: u8,
        hop_count: u8,
        link: Ipv6Addr,
        peer: Ipv6Addr,
    ) -> Result<Self, Error> {
        let h = buf.get_mut(..RELAY_HEADER).ok_or(Error::NoRoom)?;
        h[0] = msg_type;
        h[1] = hop_count;
        h[2..18].copy_from_slice(&link.octets());
        h[18..34].copy_from_slice(&peer.octets());
        Ok(Writer {
            buf,
            len: RELAY_HEADER,
            open: [0; 4],
            depth: 0,
        })
    }

    /// Append option `code` with `value`.
    pub fn option(&mut self, code: u16, value: &[u8]) -> Result<&mut Self, Error> {
        let l = u16::try_from(value.len()).map_err(|_| Error::NoRoom)?;
        let o = self
            .buf
            .get_mut(self.len..self.len + 4 + value.len())
            .ok_or(Error::NoRoom)?;
        o[..2].copy_from_slice(&code.to_be_bytes());
        o[2..4].copy_from_slice(&l.to_be_bytes());
        o[4..].copy_from_slice(value);
        self.len += 4 + value.len();
        Ok(self)
    }

    /// Open option `code` whose value is `fixed` followed by options
    /// written until [`Writer::end`] (IA_NA, IA_PD, IAADDR, IAPREFIX,
    /// Relay Message); at most 4 deep.
    pub fn begin(&mut self, code: u16, fixed: &[u8]) -> Result<&mut Self, Error> {
        if self.depth == self.open.len() {
            return Err(Error::NoRoom);
        }
        let at = self.len;
        self.option(code, fixed)?;
        self.open[self.depth] = at;
        self.depth += 1;
        Ok(self)
    }

    /// Close the innermost [`Writer::begin`]: its length now covers
    /// everything written since.
    pub fn end(&mut self) -> Result<&mut Self, Error> {
        if self.depth == 0 {
            return Err(Error::NoRoom);
        }
        self.depth -= 1;
        let at = self.open[self.depth];
        let l = u16::try_from(self.len - at - 4).map_err(|_| Error::NoRoom)?;
        self.buf[at + 2..at + 4].copy_from_slice(&l.to_be_bytes());
        Ok(self)
    }

    /// Append raw bytes to the open option (a Relay Message's inner
    /// message).
    pub fn raw(&mut self, b: &[u8]) -> Result<&mut Self, Error> {
        let o = self
            .buf
            .get_mut(self.len..self.len + b.len())
            .ok_or(Error::NoRoom)?;
        o.copy_from_slice(b);
        self.len += b.len();
        Ok(self)
    }

    /// An IA_NA / IA_PD header's fixed part.
    pub fn ia_fixed(iaid: u32, t1: u32, t2: u32) -> [u8; 12] {
        let mut f = [0u8; 12];
        f[..4].copy_from_slice(&iaid.to_be_bytes());
        f[4..8].copy_from_slice(&t1.to_be_bytes());
        f[8..].copy_from_slice(&t2.to_be_bytes());
        f
    }

    /// An IAADDR value.
    pub fn ia_addr(a: &IaAddr) -> [u8; 24] {
        let mut f = [0u8; 24];
        f[..16].copy_from_slice(&a.addr.octets());
        f[16..20].copy_from_slice(&a.preferred.to_be_bytes());
        f[20..].copy_from_slice(&a.valid.to_be_bytes());
        f
    }

    /// An IAPREFIX value.
    pub fn ia_prefix(p: &IaPrefix) -> [u8; 25] {
        let mut f = [0u8; 25];
        f[..4].copy_from_slice(&p.preferred.to_be_bytes());
        f[4..8].copy_from_slice(&p.valid.to_be_bytes());
        f[8] = p.len;
        f[9..].copy_from_slice(&p.prefix.octets());
        f
    }

    /// The message so far (unclosed nested options are closed first).
    pub fn finish(mut self) -> Result<usize, Error> {
        while self.depth > 0 {
            self.end()?;
        }
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SOLICIT as ISC dhclient -6 sends it (byte for byte, transaction id
    /// 0x5a4b3c): Client ID (DUID-LLT, Ethernet), ORO (DNS servers), Elapsed
    /// Time 0, IA_NA with IAID 0x0a0b0c0d and no address.
    const SOLICIT: [u8; 54] = [
        0x01, 0x5a, 0x4b, 0x3c, // SOLICIT, xid
        0x00, 0x01, 0x00, 0x0e, // Client ID, 14
        0x00, 0x01, 0x00, 0x01, 0x2c, 0x8f, 0x12, 0x34, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
        0x06, 0x00, 0x02, 0x00, 0x17, // ORO: DNS servers
        0x00, 0x08, 0x00, 0x02, 0x00, 0x00, // Elapsed Time 0
        0x00, 0x03, 0x00, 0x0c, // IA_NA, 12
        0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x00, 0x15, 0x18, 0x00, 0x0e, 0x00,
        0x00, // Rapid Commit
    ];

    #[test]
    fn a_solicit_reads_back_field_by_field() {
        let p = Dhcp6Packet::new_checked(&SOLICIT).unwrap();
        assert_eq!((p.msg_type(), p.xid()), (msg::SOLICIT, 0x5a4b3c));
        assert!(!p.is_relay() && p.rapid_commit());
        assert_eq!(p.elapsed_time(), Some(0));
        let duid = Duid::parse(p.client_id().unwrap()).unwrap();
        assert_eq!(
            duid,
            Duid::Llt {
                htype: 1,
                time: 0x2c8f_1234,
                lladdr: &[2, 0, 0, 0, 0, 1]
            }
        );
        let ia: Vec<IaNa> = p.ia_nas().collect();
        assert_eq!(ia.len(), 1);
        assert_eq!((ia[0].iaid, ia[0].t1, ia[0].t2), (0x0a0b0c0d, 3600, 5400));
        assert_eq!(ia[0].addrs().count(), 0);
        assert_eq!(p.option(opt::ORO), Some(&[0, 0x17][..]));
    }

    #[test]
    fn the_writer_makes_the_same_bytes_and_nests() {
        let mut b = [0u8; 256];
        let mut w = Writer::message(&mut b, msg::SOLICIT, 0x5a4b3c).unwrap();
        w.option(opt::CLIENTID, &SOLICIT[8..22])
            .unwrap()
            .option(opt::ORO, &[0, 0x17])
            .unwrap()
            .option(opt::ELAPSED_TIME, &[0, 0])
            .unwrap()
            .begin(opt::IA_NA, &Writer::ia_fixed(0x0a0b0c0d, 3600, 5400))
            .unwrap()
            .end()
            .unwrap()
            .option(opt::RAPID_COMMIT, &[])
            .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(&b[..n], &SOLICIT[..]);

        // A REPLY with an address and a prefix, inside a RELAY-REPL with an
        // Interface-ID and a Remote-ID.
        let mut inner = [0u8; 256];
        let a = IaAddr {
            addr: "2001:db8::100".parse().unwrap(),
            preferred: 300,
            valid: 600,
        };
        let pfx = IaPrefix {
            preferred: 300,
            valid: 600,
            len: 56,
            prefix: "2001:db8:100::".parse().unwrap(),
        };
        let mut w = Writer::message(&mut inner, msg::REPLY, 7).unwrap();
        w.option(opt::SERVERID, &duid_ll([2, 0, 0, 0, 0, 9]))
            .unwrap()
            .begin(opt::IA_NA, &Writer::ia_fixed(1, 150, 240))
            .unwrap()
            .option(opt::IAADDR, &Writer::ia_addr(&a))
            .unwrap()
            .end()
            .unwrap()
            .begin(opt::IA_PD, &Writer::ia_fixed(2, 150, 240))
            .unwrap()
            .option(opt::IAPREFIX, &Writer::ia_prefix(&pfx))
            .unwrap();
        let n = w.finish().unwrap();
        let mut outer = [0u8; 512];
        let link: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let peer: Ipv6Addr = "fe80::2".parse().unwrap();
        let mut w = Writer::relay(&mut outer, msg::RELAY_REPL, 0, link, peer).unwrap();
        w.option(opt::INTERFACE_ID, b"eth0")
            .unwrap()
            .option(opt::REMOTE_ID, &[0, 0, 0, 9, 0xab])
            .unwrap()
            .begin(opt::RELAY_MSG, &[])
            .unwrap()
            .raw(&inner[..n])
            .unwrap();
        let m = w.finish().unwrap();
        let r = Dhcp6Packet::new_checked(&outer[..m]).unwrap();
        assert!(r.is_relay());
        assert_eq!(
            (r.link_address(), r.peer_address()),
            (Some(link), Some(peer))
        );
        assert_eq!(r.option(opt::INTERFACE_ID), Some(&b"eth0"[..]));
        let inner = r.relay_msg().unwrap().unwrap();
        assert_eq!((inner.msg_type(), inner.xid()), (msg::REPLY, 7));
        let ia: Vec<IaNa> = inner.ia_nas().collect();
        assert_eq!(ia[0].addrs().collect::<Vec<_>>(), vec![a]);
        assert_eq!(ia[0].status(), None);
        let pd: Vec<IaNa> = inner.ia_pds().collect();
        assert_eq!(pd[0].prefixes().collect::<Vec<_>>(), vec![pfx]);
        assert_eq!(
            Duid::parse(inner.server_id().unwrap()).unwrap(),
            Duid::Ll {
                htype: 1,
                lladdr: &[2, 0, 0, 0, 0, 9]
            }
        );
    }

    #[test]
    fn malformed_messages_are_refused_by_reason() {
        assert_eq!(Dhcp6Packet::new_checked(&[]).unwrap_err(), Error::Truncated);
        assert_eq!(
            Dhcp6Packet::new_checked(&[0, 1, 2, 3]).unwrap_err(),
            Error::BadType
        );
        assert_eq!(
            Dhcp6Packet::new_checked(&[14, 1, 2, 3]).unwrap_err(),
            Error::BadType
        );
        assert_eq!(
            Dhcp6Packet::new_checked(&[1, 1, 2]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Dhcp6Packet::new_checked(&[12; 20]).unwrap_err(),
            Error::Truncated
        );
        // An option whose length runs past the message.
        let mut m = SOLICIT;
        m[7] = 0x40;
        assert_eq!(Dhcp6Packet::new_checked(&m).unwrap_err(), Error::BadOption);
        // Three stray bytes after the last option.
        let mut v = SOLICIT.to_vec();
        v.extend_from_slice(&[0, 1, 0]);
        assert_eq!(Dhcp6Packet::new_checked(&v).unwrap_err(), Error::BadOption);
        // A short IA_NA, a prefix length over 128, a too-short DUID.
        assert_eq!(IaNa::parse(&[0; 11]).unwrap_err(), Error::BadOption);
        let mut p = [0u8; 25];
        p[8] = 129;
        assert_eq!(IaPrefix::parse(&p).unwrap_err(), Error::BadOption);
        assert_eq!(Duid::parse(&[0, 1]).unwrap_err(), Error::BadOption);
        assert_eq!(Duid::parse(&[0, 4, 1]).unwrap_err(), Error::BadOption);
        // No room.
        let mut tiny = [0u8; 6];
        let mut w = Writer::message(&mut tiny, msg::SOLICIT, 1).unwrap();
        assert_eq!(
            w.option(opt::CLIENTID, &[1, 2, 3]).unwrap_err(),
            Error::NoRoom
        );
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = Dhcp6Packet::new_checked(&b) {
                let _ = (p.xid(), p.hop_count(), p.link_address(), p.peer_address(), p.status());
                let _ = (p.elapsed_time(), p.preference(), p.rapid_commit());
                for ia in p.ia_nas().chain(p.ia_pds()) {
                    let _ = (ia.addrs().count(), ia.prefixes().count(), ia.status());
                }
                if let Some(Ok(i)) = p.relay_msg() {
                    let _ = i.ia_nas().count();
                }
                if let Some(d) = p.client_id() {
                    let _ = Duid::parse(d);
                }
            }
        }

        #[test]
        fn written_options_read_back(opts in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..12),
                                     xid in 0u32..1 << 24, t in 1u8..=11) {
            let mut b = [0u8; 1024];
            let mut w = Writer::message(&mut b, t, xid).unwrap();
            for (c, v) in &opts {
                w.option(*c, v).unwrap();
            }
            let n = w.finish().unwrap();
            let p = Dhcp6Packet::new_checked(&b[..n]).unwrap();
            prop_assert_eq!((p.msg_type(), p.xid()), (t, xid));
            let got: Vec<(u16, Vec<u8>)> = p.options().map(|o| { let (c, v) = o.unwrap(); (c, v.to_vec()) }).collect();
            prop_assert_eq!(got, opts);
        }
    }
}
