//! The DHCPv4 message format (RFC 2131 §2, RFC 2132 options, RFC 3046
//! relay agent information).
//!
//! * [`DhcpPacket`] is a zero-copy view of the fixed BOOTP header plus the
//!   options area; [`DhcpPacket::new_checked`] validates it and afterwards no
//!   accessor panics.
//! * [`DhcpPacket::options`] iterates the options (pad and end handled,
//!   option overload 52 followed into `file` and `sname`), bounded by the
//!   buffer: an option overrunning its area is an [`Error`], never a panic.
//!   It yields the pieces as they are on the wire.
//! * Long options (RFC 3396): an option code that appears more than once
//!   (in the options field, then `file`, then `sname` when overloaded) is
//!   one logical option whose value is the concatenation of the pieces, in
//!   that order. [`DhcpRepr::parse`] and [`DhcpPacket::option_concat`]
//!   concatenate into a caller's [`OptionScratch`] (fixed capacity, no
//!   allocation; only repeated options are copied, a single piece is
//!   borrowed from the message); [`DhcpRepr::emit`] splits a value longer
//!   than 255 bytes into consecutive pieces.
//! * [`DhcpRepr`] is the parsed, typed form of the fields and options this
//!   crate understands; [`DhcpRepr::emit`] writes it into a caller's buffer.
//! * [`RelayAgentInfo`] parses and emits the Option 82 sub-options.
//!
//! ```text
//!  0      1      2      3      4             8      10     12
//! +------+------+------+------+-------------+------+------+
//! |  op  |htype | hlen | hops |     xid     | secs |flags |
//! +------+------+------+------+-------------+------+------+
//! | ciaddr (12) | yiaddr (16) | siaddr (20) | giaddr (24) |
//! +-------------+-------------+-------------+-------------+
//! | chaddr (28, 16 bytes) | sname (44, 64) | file (108, 128) |
//! +------------------------------------------------------+
//! | magic cookie 99.130.83.99 (236) | options (240..)   |
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use qsplice_wire::MacAddr;

/// `op` of a message sent by a client (or relay) to a server.
pub const BOOTREQUEST: u8 = 1;
/// `op` of a message sent by a server.
pub const BOOTREPLY: u8 = 2;
/// `htype` of Ethernet (10 Mb and everything since).
pub const HTYPE_ETHERNET: u8 = 1;
/// The magic cookie that starts the options area (RFC 2131 §3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The UDP port of servers (and of relay agents).
pub const SERVER_PORT: u16 = 67;
/// The UDP port of clients.
pub const CLIENT_PORT: u16 = 68;
/// The broadcast bit of the `flags` field (RFC 2131 §2, figure 2).
pub const FLAG_BROADCAST: u16 = 0x8000;

/// Offsets of the fixed fields.
mod f {
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: usize = 28;
    pub const SNAME: usize = 44;
    pub const FILE: usize = 108;
    pub const COOKIE: usize = 236;
    pub const OPTIONS: usize = 240;
}

/// Option codes (RFC 2132, RFC 3046) this crate knows by name.
pub mod opt {
    /// Pad (one byte, no length).
    pub const PAD: u8 = 0;
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers (list of addresses).
    pub const ROUTER: u8 = 3;
    /// Domain name servers (list of addresses).
    pub const DNS: u8 = 6;
    /// Host name.
    pub const HOSTNAME: u8 = 12;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// IP address lease time (seconds).
    pub const LEASE_TIME: u8 = 51;
    /// Option overload (1 = file, 2 = sname, 3 = both).
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Message (text, e.g. why a NAK).
    pub const MESSAGE: u8 = 56;
    /// Maximum DHCP message size.
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) time value.
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time value.
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// Relay agent information (RFC 3046).
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// End of options.
    pub const END: u8 = 255;
}

/// Why a DHCP message could not be parsed.
///
/// [`Error::as_str`] names are stable counter names.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Error {
    /// Shorter than the 240-byte fixed header plus cookie.
    Truncated,
    /// The magic cookie is not 99.130.83.99.
    BadCookie,
    /// `hlen` is above 16 (the size of `chaddr`).
    BadHlen,
    /// An option's length byte is missing or its data runs past its area.
    OptionOverrun,
    /// An options area (or an overloaded `file`/`sname`) has no end option.
    MissingEnd,
    /// A known option has a length its definition does not allow.
    BadOptionLen,
    /// The option overload value is not 1, 2 or 3, or it appears outside the
    /// options field, or more than once.
    BadOverload,
    /// No message type option (53).
    MissingMessageType,
    /// A message type outside 1..=8.
    BadMessageType,
    /// Option 82 sub-options overrun the option.
    BadRelayAgentInfo,
    /// The output buffer is too small for the message (emit only).
    BufferTooSmall,
    /// An option value is too long: an Option 82 sub-option over 255 bytes
    /// (emit), or the concatenated pieces of repeated options (RFC 3396)
    /// exceed [`MAX_CONCAT_LEN`] (parse; only possible for messages longer
    /// than [`MAX_CONCAT_LEN`] + 48 bytes).
    OptionTooLong,
    /// Option 53 appears more than once and its pieces do not concatenate
    /// (RFC 3396) to exactly one byte: two message types, conflicting or
    /// repeated.
    ConflictingMessageType,
}

impl Error {
    /// All variants, in declaration order (for counter tables).
    pub const ALL: [Error; 13] = [
        Error::Truncated,
        Error::BadCookie,
        Error::BadHlen,
        Error::OptionOverrun,
        Error::MissingEnd,
        Error::BadOptionLen,
        Error::BadOverload,
        Error::MissingMessageType,
        Error::BadMessageType,
        Error::BadRelayAgentInfo,
        Error::BufferTooSmall,
        Error::OptionTooLong,
        Error::ConflictingMessageType,
    ];

    /// Stable `snake_case` name, usable as a counter name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadCookie => "bad_cookie",
            Error::BadHlen => "bad_hlen",
            Error::OptionOverrun => "option_overrun",
            Error::MissingEnd => "missing_end",
            Error::BadOptionLen => "bad_option_len",
            Error::BadOverload => "bad_overload",
            Error::MissingMessageType => "missing_message_type",
            Error::BadMessageType => "bad_message_type",
            Error::BadRelayAgentInfo => "bad_relay_agent_info",
            Error::BufferTooSmall => "buffer_too_small",
            Error::OptionTooLong => "option_too_long",
            Error::ConflictingMessageType => "conflicting_message_type",
        }
    }

    /// Index of the variant in [`Error::ALL`].
    pub const fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

/// DHCP message types (option 53).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum MessageType {
    /// Client broadcast to locate servers.
    Discover = 1,
    /// Server offer of configuration.
    Offer = 2,
    /// Client request of offered parameters, or renewal / rebinding /
    /// reboot confirmation.
    Request = 3,
    /// Client: the address is already in use.
    Decline = 4,
    /// Server: configuration committed.
    Ack = 5,
    /// Server: the client's notion of its address is wrong.
    Nak = 6,
    /// Client relinquishes its address.
    Release = 7,
    /// Client asks for local configuration only.
    Inform = 8,
}

impl MessageType {
    /// The type for an option 53 value.
    pub const fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }

    /// Stable lower-case name (`"discover"`, …).
    pub const fn as_str(&self) -> &'static str {
        match self {
            MessageType::Discover => "discover",
            MessageType::Offer => "offer",
            MessageType::Request => "request",
            MessageType::Decline => "decline",
            MessageType::Ack => "ack",
            MessageType::Nak => "nak",
            MessageType::Release => "release",
            MessageType::Inform => "inform",
        }
    }

    /// Whether clients send this type (`op` = BOOTREQUEST).
    pub const fn is_client_message(&self) -> bool {
        matches!(
            self,
            MessageType::Discover
                | MessageType::Request
                | MessageType::Decline
                | MessageType::Release
                | MessageType::Inform
        )
    }
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn get_ip(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// A zero-copy view of a DHCP message (the UDP payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpPacket<T> {
    buffer: T,
}

impl<T> DhcpPacket<T> {
    /// Length of the fixed part including the magic cookie.
    pub const HEADER_LEN: usize = f::OPTIONS;

    /// Wraps `buffer` without validation (for emitting). Fixed-field
    /// accessors panic if `buffer` is shorter than [`Self::HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        DhcpPacket { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> DhcpPacket<T> {
    /// Wraps `buffer` after validating length (≥ 240), magic cookie and
    /// `hlen` (≤ 16). No accessor panics afterwards. Options are validated
    /// lazily by [`Self::options`] (or all at once by [`DhcpRepr::parse`]).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[f::COOKIE..f::OPTIONS] != MAGIC_COOKIE {
            return Err(Error::BadCookie);
        }
        if b[f::HLEN] > 16 {
            return Err(Error::BadHlen);
        }
        Ok(p)
    }

    /// `op`: [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[f::OP]
    }
    /// Hardware address type ([`HTYPE_ETHERNET`]).
    pub fn htype(&self) -> u8 {
        self.buffer.as_ref()[f::HTYPE]
    }
    /// Hardware address length (6 for Ethernet).
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[f::HLEN]
    }
    /// Relay hops.
    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[f::HOPS]
    }
    /// Transaction id.
    pub fn xid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), f::XID)
    }
    /// Seconds elapsed since the client began acquisition or renewal.
    pub fn secs(&self) -> u16 {
        get_u16(self.buffer.as_ref(), f::SECS)
    }
    /// The flags field.
    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), f::FLAGS)
    }
    /// Whether the broadcast bit is set.
    pub fn broadcast(&self) -> bool {
        self.flags() & FLAG_BROADCAST != 0
    }
    /// Client IP address (set when the client has one).
    pub fn ciaddr(&self) -> Ipv4Addr {
        get_ip(self.buffer.as_ref(), f::CIADDR)
    }
    /// "Your" (client) IP address, assigned by the server.
    pub fn yiaddr(&self) -> Ipv4Addr {
        get_ip(self.buffer.as_ref(), f::YIADDR)
    }
    /// Next server IP address.
    pub fn siaddr(&self) -> Ipv4Addr {
        get_ip(self.buffer.as_ref(), f::SIADDR)
    }
    /// Relay agent IP address.
    pub fn giaddr(&self) -> Ipv4Addr {
        get_ip(self.buffer.as_ref(), f::GIADDR)
    }
    /// The whole 16-byte `chaddr` field.
    pub fn chaddr_raw(&self) -> &[u8; 16] {
        let b = self.buffer.as_ref();
        b[f::CHADDR..f::SNAME].try_into().unwrap_or(&[0; 16])
    }
    /// The first `hlen` bytes of `chaddr`.
    pub fn chaddr_bytes(&self) -> &[u8] {
        let n = usize::from(self.hlen()).min(16);
        &self.buffer.as_ref()[f::CHADDR..f::CHADDR + n]
    }
    /// The first six bytes of `chaddr` as a MAC address (meaningful when
    /// `htype` is Ethernet and `hlen` is 6).
    pub fn chaddr(&self) -> MacAddr {
        let b = self.buffer.as_ref();
        MacAddr([
            b[f::CHADDR],
            b[f::CHADDR + 1],
            b[f::CHADDR + 2],
            b[f::CHADDR + 3],
            b[f::CHADDR + 4],
            b[f::CHADDR + 5],
        ])
    }
    /// The 64-byte server host name field (raw; may hold options when
    /// overloaded).
    pub fn sname(&self) -> &[u8] {
        &self.buffer.as_ref()[f::SNAME..f::FILE]
    }
    /// The 128-byte boot file name field (raw; may hold options when
    /// overloaded).
    pub fn file(&self) -> &[u8] {
        &self.buffer.as_ref()[f::FILE..f::COOKIE]
    }
    /// The magic cookie bytes.
    pub fn cookie(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [
            b[f::COOKIE],
            b[f::COOKIE + 1],
            b[f::COOKIE + 2],
            b[f::COOKIE + 3],
        ]
    }
    /// The options field (everything after the cookie).
    pub fn options_raw(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(f::OPTIONS..).unwrap_or(&[])
    }
    /// Iterates the options as they are on the wire, one item per piece
    /// (see [`OptionsIter`]).
    pub fn options(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.buffer.as_ref())
    }

    /// The value of option `code` after RFC 3396 concatenation: the data of
    /// every instance of `code`, in the order the options field, then
    /// `file`, then `sname` (when overloaded) hold them, copied into
    /// `scratch` (cleared first). `Ok(None)` if the option is absent.
    /// Errors: those of [`OptionsIter`] (the whole option area is walked),
    /// [`Error::OptionTooLong`] if the value exceeds [`MAX_CONCAT_LEN`].
    pub fn option_concat<'s>(
        &self,
        code: u8,
        scratch: &'s mut OptionScratch,
    ) -> Result<Option<&'s [u8]>, Error> {
        scratch.buf.clear();
        let pieces = append_pieces(self.options(), code, &mut scratch.buf)?;
        Ok((pieces > 0).then_some(scratch.buf.as_slice()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DhcpPacket<T> {
    fn b(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets `op`.
    pub fn set_op(&mut self, v: u8) {
        self.b()[f::OP] = v
    }
    /// Sets `htype`.
    pub fn set_htype(&mut self, v: u8) {
        self.b()[f::HTYPE] = v
    }
    /// Sets `hlen`.
    pub fn set_hlen(&mut self, v: u8) {
        self.b()[f::HLEN] = v
    }
    /// Sets `hops`.
    pub fn set_hops(&mut self, v: u8) {
        self.b()[f::HOPS] = v
    }
    /// Sets `xid`.
    pub fn set_xid(&mut self, v: u32) {
        self.b()[f::XID..f::XID + 4].copy_from_slice(&v.to_be_bytes())
    }
    /// Sets `secs`.
    pub fn set_secs(&mut self, v: u16) {
        self.b()[f::SECS..f::SECS + 2].copy_from_slice(&v.to_be_bytes())
    }
    /// Sets the flags field.
    pub fn set_flags(&mut self, v: u16) {
        self.b()[f::FLAGS..f::FLAGS + 2].copy_from_slice(&v.to_be_bytes())
    }
    /// Sets `ciaddr`.
    pub fn set_ciaddr(&mut self, a: Ipv4Addr) {
        self.b()[f::CIADDR..f::CIADDR + 4].copy_from_slice(&a.octets())
    }
    /// Sets `yiaddr`.
    pub fn set_yiaddr(&mut self, a: Ipv4Addr) {
        self.b()[f::YIADDR..f::YIADDR + 4].copy_from_slice(&a.octets())
    }
    /// Sets `siaddr`.
    pub fn set_siaddr(&mut self, a: Ipv4Addr) {
        self.b()[f::SIADDR..f::SIADDR + 4].copy_from_slice(&a.octets())
    }
    /// Sets `giaddr`.
    pub fn set_giaddr(&mut self, a: Ipv4Addr) {
        self.b()[f::GIADDR..f::GIADDR + 4].copy_from_slice(&a.octets())
    }
    /// Sets the whole 16-byte `chaddr`.
    pub fn set_chaddr_raw(&mut self, c: &[u8; 16]) {
        self.b()[f::CHADDR..f::SNAME].copy_from_slice(c)
    }
    /// Zeroes `sname` and `file`.
    pub fn clear_sname_file(&mut self) {
        self.b()[f::SNAME..f::COOKIE].fill(0)
    }
    /// Writes the magic cookie.
    pub fn set_cookie(&mut self) {
        self.b()[f::COOKIE..f::OPTIONS].copy_from_slice(&MAGIC_COOKIE)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Region {
    Options,
    File,
    Sname,
}

/// One option as found in the message: its code and its data.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct DhcpOption<'a> {
    /// Option code.
    pub code: u8,
    /// Option data (without code and length).
    pub data: &'a [u8],
}

/// Iterator over the options of a [`DhcpPacket`], one item per option
/// instance as on the wire (a repeated option yields each of its RFC 3396
/// pieces; [`DhcpRepr::parse`] and [`DhcpPacket::option_concat`] join them).
///
/// Pad options are skipped; the end option finishes an area. When the
/// options field carries option 52 (overload), the `file` field and then the
/// `sname` field are read next (RFC 2131 §4.1); a second option 52 is
/// [`Error::BadOverload`]. An area that ends without an
/// end option yields [`Error::MissingEnd`]; an option whose length byte or
/// data would pass the end of its area yields [`Error::OptionOverrun`].
/// After an error the iterator is finished. The iterator does at most one
/// step per option byte, so it is bounded by the buffer length.
#[derive(Clone, Debug)]
pub struct OptionsIter<'a> {
    options: &'a [u8],
    file: &'a [u8],
    sname: &'a [u8],
    region: Region,
    pos: usize,
    overload: u8,
    done: bool,
}

impl<'a> OptionsIter<'a> {
    /// The options of the DHCP message `b` (a buffer shorter than the
    /// 240-byte header has empty areas; validate with
    /// [`DhcpPacket::new_checked`] first).
    fn new(b: &'a [u8]) -> Self {
        OptionsIter {
            options: b.get(f::OPTIONS..).unwrap_or(&[]),
            file: b.get(f::FILE..f::COOKIE).unwrap_or(&[]),
            sname: b.get(f::SNAME..f::FILE).unwrap_or(&[]),
            region: Region::Options,
            pos: 0,
            overload: 0,
            done: false,
        }
    }

    fn area(&self) -> &'a [u8] {
        match self.region {
            Region::Options => self.options,
            Region::File => self.file,
            Region::Sname => self.sname,
        }
    }

    /// Moves to the next overloaded area, or finishes. Returns false when
    /// finished.
    fn next_area(&mut self) -> bool {
        let next = match self.region {
            Region::Options if self.overload & 1 != 0 => Some(Region::File),
            Region::Options | Region::File if self.overload & 2 != 0 => Some(Region::Sname),
            _ => None,
        };
        match next {
            Some(r) => {
                self.region = r;
                self.pos = 0;
                true
            }
            None => {
                self.done = true;
                false
            }
        }
    }

    fn fail(&mut self, e: Error) -> Option<Result<DhcpOption<'a>, Error>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<DhcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let area = self.area();
            let Some(&code) = area.get(self.pos) else {
                return self.fail(Error::MissingEnd);
            };
            match code {
                opt::PAD => self.pos += 1,
                opt::END => {
                    self.next_area();
                }
                _ => {
                    let Some(&len) = area.get(self.pos + 1) else {
                        return self.fail(Error::OptionOverrun);
                    };
                    let start = self.pos + 2;
                    let end = start + usize::from(len);
                    let Some(data) = area.get(start..end) else {
                        return self.fail(Error::OptionOverrun);
                    };
                    self.pos = end;
                    if code == opt::OVERLOAD {
                        // A second 52 would concatenate (RFC 3396) to a
                        // 2-byte value: malformed.
                        if self.region != Region::Options
                            || self.overload != 0
                            || len != 1
                            || !(1..=3).contains(&data[0])
                        {
                            return self.fail(Error::BadOverload);
                        }
                        self.overload = data[0];
                    }
                    return Some(Ok(DhcpOption { code, data }));
                }
            }
        }
        None
    }
}

/// Capacity of an [`OptionScratch`]: the most bytes of concatenated
/// (RFC 3396) option values one message may need. A value is at most the
/// option areas together (options field + 64-byte `sname` + 128-byte
/// `file`, less two bytes per piece), so a DHCP message of up to
/// `MAX_CONCAT_LEN + 48` bytes (every message of an Ethernet frame up to
/// 2 KiB) never exceeds it.
pub const MAX_CONCAT_LEN: usize = 2048;

/// Caller-provided storage for option values that are concatenated from
/// several pieces (RFC 3396). Fixed capacity ([`MAX_CONCAT_LEN`]), no heap
/// allocation; creating one does not initialise its bytes, so one on the
/// stack per message is cheap. Values that are a single piece on the wire
/// are borrowed from the message and never copied here.
#[derive(Clone, Debug, Default)]
pub struct OptionScratch {
    buf: arrayvec::ArrayVec<u8, MAX_CONCAT_LEN>,
}

impl OptionScratch {
    /// Empty storage.
    pub const fn new() -> Self {
        OptionScratch {
            buf: arrayvec::ArrayVec::new_const(),
        }
    }
}

/// Appends the data of every instance of `code` in `iter` to `out`;
/// returns the number of instances. Walks the whole iterator, so option
/// errors anywhere are reported.
fn append_pieces(
    iter: OptionsIter<'_>,
    code: u8,
    out: &mut arrayvec::ArrayVec<u8, MAX_CONCAT_LEN>,
) -> Result<usize, Error> {
    let mut pieces = 0;
    for o in iter {
        let o = o?;
        if o.code == code {
            pieces += 1;
            out.try_extend_from_slice(o.data)
                .map_err(|_| Error::OptionTooLong)?;
        }
    }
    Ok(pieces)
}

/// Option codes [`DhcpRepr`] keeps, each with a slot in the parse tables.
const KNOWN: [u8; 15] = [
    opt::MESSAGE_TYPE,
    opt::SERVER_ID,
    opt::REQUESTED_IP,
    opt::LEASE_TIME,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::DNS,
    opt::CLIENT_ID,
    opt::PARAMETER_REQUEST_LIST,
    opt::MAX_MESSAGE_SIZE,
    opt::HOSTNAME,
    opt::MESSAGE,
    opt::RELAY_AGENT_INFO,
];

/// The slot of `code` in [`KNOWN`].
const fn known_slot(code: u8) -> Option<usize> {
    Some(match code {
        opt::MESSAGE_TYPE => 0,
        opt::SERVER_ID => 1,
        opt::REQUESTED_IP => 2,
        opt::LEASE_TIME => 3,
        opt::RENEWAL_TIME => 4,
        opt::REBINDING_TIME => 5,
        opt::SUBNET_MASK => 6,
        opt::ROUTER => 7,
        opt::DNS => 8,
        opt::CLIENT_ID => 9,
        opt::PARAMETER_REQUEST_LIST => 10,
        opt::MAX_MESSAGE_SIZE => 11,
        opt::HOSTNAME => 12,
        opt::MESSAGE => 13,
        opt::RELAY_AGENT_INFO => 14,
        _ => return None,
    })
}

// `known_slot` is the inverse of `KNOWN`.
const _: () = {
    let mut i = 0;
    while i < KNOWN.len() {
        assert!(matches!(known_slot(KNOWN[i]), Some(j) if j == i));
        i += 1;
    }
};

/// Option 82 (RFC 3046) sub-options: agent circuit id (1) and agent remote
/// id (2). Other sub-options are skipped on parse (they are preserved by
/// echoing the raw option, see [`DhcpRepr::relay_agent_info`]).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct RelayAgentInfo<'a> {
    /// Sub-option 1.
    pub circuit_id: Option<&'a [u8]>,
    /// Sub-option 2.
    pub remote_id: Option<&'a [u8]>,
}

impl<'a> RelayAgentInfo<'a> {
    /// Sub-option code of the agent circuit id.
    pub const CIRCUIT_ID: u8 = 1;
    /// Sub-option code of the agent remote id.
    pub const REMOTE_ID: u8 = 2;

    /// Parses the data of option 82. Every sub-option must fit inside the
    /// option ([`Error::BadRelayAgentInfo`] otherwise); RFC 3046 §2.0 also
    /// requires sub-options of length ≥ 1 for circuit and remote id.
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        let mut out = RelayAgentInfo::default();
        let mut pos = 0;
        while pos < data.len() {
            let code = data[pos];
            let len = usize::from(*data.get(pos + 1).ok_or(Error::BadRelayAgentInfo)?);
            let v = data
                .get(pos + 2..pos + 2 + len)
                .ok_or(Error::BadRelayAgentInfo)?;
            match code {
                Self::CIRCUIT_ID if len > 0 => out.circuit_id = Some(v),
                Self::REMOTE_ID if len > 0 => out.remote_id = Some(v),
                Self::CIRCUIT_ID | Self::REMOTE_ID => return Err(Error::BadRelayAgentInfo),
                _ => {}
            }
            pos += 2 + len;
        }
        Ok(out)
    }

    /// Length of the option data [`Self::emit`] writes.
    pub fn data_len(&self) -> usize {
        self.circuit_id.map_or(0, |c| 2 + c.len()) + self.remote_id.map_or(0, |r| 2 + r.len())
    }

    /// Writes the option data (sub-options, without the option's own code
    /// and length) into `out` and returns its length. The total may exceed
    /// 255 bytes ([`DhcpRepr::emit`] splits such a value into RFC 3396
    /// pieces). Errors: [`Error::OptionTooLong`] if a sub-option exceeds
    /// 255 bytes, [`Error::BufferTooSmall`] if `out` is too short.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        if [self.circuit_id, self.remote_id]
            .iter()
            .flatten()
            .any(|v| v.len() > 255)
        {
            return Err(Error::OptionTooLong);
        }
        let n = self.data_len();
        if out.len() < n {
            return Err(Error::BufferTooSmall);
        }
        let mut pos = 0;
        for (code, v) in [
            (Self::CIRCUIT_ID, self.circuit_id),
            (Self::REMOTE_ID, self.remote_id),
        ] {
            if let Some(v) = v {
                out[pos] = code;
                out[pos + 1] = v.len() as u8;
                out[pos + 2..pos + 2 + v.len()].copy_from_slice(v);
                pos += 2 + v.len();
            }
        }
        Ok(pos)
    }
}

/// Up to this many addresses of a list option (routers, DNS servers) are
/// kept by [`DhcpRepr`].
pub const MAX_ADDRS: usize = 4;

/// A short list of IPv4 addresses (option 3, option 6).
pub type AddrList = arrayvec::ArrayVec<Ipv4Addr, MAX_ADDRS>;

/// The typed content of a DHCP message: the fixed fields and the options
/// this crate knows. Variable-length option data borrows from the parsed
/// buffer (or from the caller, when emitting).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DhcpRepr<'a> {
    /// [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub op: u8,
    /// Option 53.
    pub message_type: MessageType,
    /// `htype` (1 = Ethernet).
    pub htype: u8,
    /// `hlen` (6 for Ethernet), at most 16.
    pub hlen: u8,
    /// Relay hops.
    pub hops: u8,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client started.
    pub secs: u16,
    /// The broadcast flag.
    pub broadcast: bool,
    /// Client address.
    pub ciaddr: Ipv4Addr,
    /// Your (assigned) address.
    pub yiaddr: Ipv4Addr,
    /// Next server address.
    pub siaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// Client hardware address (all 16 bytes; the first `hlen` count).
    pub chaddr: [u8; 16],
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 51 (seconds).
    pub lease_time: Option<u32>,
    /// Option 58 (seconds).
    pub renewal_time: Option<u32>,
    /// Option 59 (seconds).
    pub rebinding_time: Option<u32>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3 (first [`MAX_ADDRS`] kept).
    pub routers: AddrList,
    /// Option 6 (first [`MAX_ADDRS`] kept).
    pub dns_servers: AddrList,
    /// Option 61 (type byte included).
    pub client_id: Option<&'a [u8]>,
    /// Option 55.
    pub parameter_request_list: Option<&'a [u8]>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Option 12.
    pub hostname: Option<&'a [u8]>,
    /// Option 56.
    pub message: Option<&'a [u8]>,
    /// Option 82, raw (the sub-options as on the wire, all RFC 3396 pieces
    /// concatenated; parse them with [`RelayAgentInfo::parse`]). Kept raw so
    /// that a server can echo it unchanged and whole (RFC 3046 §2.2).
    /// Emitted as the last option (as several pieces if over 255 bytes).
    pub relay_agent_info: Option<&'a [u8]>,
}

fn ip_of(data: &[u8]) -> Result<Ipv4Addr, Error> {
    match data {
        [a, b, c, d] => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => Err(Error::BadOptionLen),
    }
}

fn u32_of(data: &[u8]) -> Result<u32, Error> {
    match data {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(Error::BadOptionLen),
    }
}

fn addrs_of(data: &[u8]) -> Result<AddrList, Error> {
    if data.is_empty() || data.len() % 4 != 0 {
        return Err(Error::BadOptionLen);
    }
    let mut l = AddrList::new();
    for c in data.chunks_exact(4).take(MAX_ADDRS) {
        l.push(Ipv4Addr::new(c[0], c[1], c[2], c[3]));
    }
    Ok(l)
}

fn nonempty(data: &[u8]) -> Result<&[u8], Error> {
    if data.is_empty() {
        Err(Error::BadOptionLen)
    } else {
        Ok(data)
    }
}

impl<'a> DhcpRepr<'a> {
    /// A message with all fields zero / absent except `op`, `message_type`,
    /// `xid`, Ethernet `htype`/`hlen` and `chaddr` = `mac`.
    pub fn new(op: u8, message_type: MessageType, xid: u32, mac: MacAddr) -> Self {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac.0);
        DhcpRepr {
            op,
            message_type,
            htype: HTYPE_ETHERNET,
            hlen: 6,
            hops: 0,
            xid,
            secs: 0,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            server_id: None,
            requested_ip: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            subnet_mask: None,
            routers: AddrList::new(),
            dns_servers: AddrList::new(),
            client_id: None,
            parameter_request_list: None,
            max_message_size: None,
            hostname: None,
            message: None,
            relay_agent_info: None,
        }
    }

    /// The first six bytes of `chaddr` as a MAC address.
    pub fn mac(&self) -> MacAddr {
        MacAddr([
            self.chaddr[0],
            self.chaddr[1],
            self.chaddr[2],
            self.chaddr[3],
            self.chaddr[4],
            self.chaddr[5],
        ])
    }

    /// Parses a whole DHCP message: validates it like
    /// [`DhcpPacket::new_checked`], then every option. Unknown options are
    /// skipped. A known option that appears more than once is one long
    /// option (RFC 3396): its pieces are concatenated in order (options
    /// field, then `file`, then `sname`) into `scratch` (cleared first), and
    /// the whole value is validated and kept; a single piece is borrowed
    /// from `b`. Errors: those of `new_checked` and of [`OptionsIter`],
    /// [`Error::BadOptionLen`] for a known option of the wrong size,
    /// [`Error::BadRelayAgentInfo`] for malformed Option 82,
    /// [`Error::MissingMessageType`] / [`Error::BadMessageType`],
    /// [`Error::ConflictingMessageType`] for a repeated option 53 that does
    /// not concatenate to one byte, [`Error::OptionTooLong`] if the
    /// concatenated values exceed [`MAX_CONCAT_LEN`].
    pub fn parse(b: &'a [u8], scratch: &'a mut OptionScratch) -> Result<Self, Error> {
        // Re-validate: the view may come from new_unchecked.
        let p = DhcpPacket::new_checked(b)?;
        let mut r = DhcpRepr::new(p.op(), MessageType::Discover, p.xid(), MacAddr::ZERO);
        r.htype = p.htype();
        r.hlen = p.hlen();
        r.hops = p.hops();
        r.secs = p.secs();
        r.broadcast = p.broadcast();
        r.ciaddr = p.ciaddr();
        r.yiaddr = p.yiaddr();
        r.siaddr = p.siaddr();
        r.giaddr = p.giaddr();
        r.chaddr = *p.chaddr_raw();

        // Pass 1: validate every option, note the first piece and the
        // number of pieces of each known option.
        let mut first: [&'a [u8]; KNOWN.len()] = [&[]; KNOWN.len()];
        let mut pieces = [0usize; KNOWN.len()];
        for o in OptionsIter::new(b) {
            let o = o?;
            if let Some(i) = known_slot(o.code) {
                if pieces[i] == 0 {
                    first[i] = o.data;
                }
                pieces[i] += 1;
            }
        }
        // Pass 2, only for repeated options (rare): concatenate their pieces
        // into the scratch, one option after the other.
        scratch.buf.clear();
        let mut ranges = [(0usize, 0usize); KNOWN.len()];
        for (i, &n) in pieces.iter().enumerate() {
            if n > 1 {
                let start = scratch.buf.len();
                append_pieces(OptionsIter::new(b), KNOWN[i], &mut scratch.buf)?;
                ranges[i] = (start, scratch.buf.len());
            }
        }
        let joined: &'a OptionScratch = scratch;
        let value = |code: u8| -> Option<&'a [u8]> {
            let i = known_slot(code)?;
            match pieces[i] {
                0 => None,
                1 => Some(first[i]),
                _ => joined.buf.get(ranges[i].0..ranges[i].1),
            }
        };

        let mt = match value(opt::MESSAGE_TYPE) {
            None => return Err(Error::MissingMessageType),
            Some([v]) => MessageType::from_u8(*v).ok_or(Error::BadMessageType)?,
            Some(_) if pieces[0] > 1 => return Err(Error::ConflictingMessageType),
            Some(_) => return Err(Error::BadOptionLen),
        };
        r.message_type = mt;
        r.server_id = value(opt::SERVER_ID).map(ip_of).transpose()?;
        r.requested_ip = value(opt::REQUESTED_IP).map(ip_of).transpose()?;
        r.lease_time = value(opt::LEASE_TIME).map(u32_of).transpose()?;
        r.renewal_time = value(opt::RENEWAL_TIME).map(u32_of).transpose()?;
        r.rebinding_time = value(opt::REBINDING_TIME).map(u32_of).transpose()?;
        r.subnet_mask = value(opt::SUBNET_MASK).map(ip_of).transpose()?;
        if let Some(d) = value(opt::ROUTER) {
            r.routers = addrs_of(d)?;
        }
        if let Some(d) = value(opt::DNS) {
            r.dns_servers = addrs_of(d)?;
        }
        if let Some(d) = value(opt::CLIENT_ID) {
            if d.len() < 2 {
                return Err(Error::BadOptionLen);
            }
            r.client_id = Some(d);
        }
        r.parameter_request_list = value(opt::PARAMETER_REQUEST_LIST)
            .map(nonempty)
            .transpose()?;
        if let Some(d) = value(opt::MAX_MESSAGE_SIZE) {
            let [a, b] = d else {
                return Err(Error::BadOptionLen);
            };
            r.max_message_size = Some(u16::from_be_bytes([*a, *b]));
        }
        r.hostname = value(opt::HOSTNAME).map(nonempty).transpose()?;
        r.message = value(opt::MESSAGE).map(nonempty).transpose()?;
        if let Some(d) = value(opt::RELAY_AGENT_INFO) {
            RelayAgentInfo::parse(nonempty(d).map_err(|_| Error::BadRelayAgentInfo)?)?;
            r.relay_agent_info = Some(d);
        }
        Ok(r)
    }

    fn options_len(&self) -> usize {
        let addr = |o: Option<Ipv4Addr>| o.map_or(0, |_| 6);
        let u = |o: Option<u32>| o.map_or(0, |_| 6);
        let bytes = |o: Option<&[u8]>| o.map_or(0, |d| encoded_len(d.len()));
        let list = |l: &AddrList| if l.is_empty() { 0 } else { 2 + 4 * l.len() };
        3 + addr(self.server_id)
            + addr(self.requested_ip)
            + u(self.lease_time)
            + u(self.renewal_time)
            + u(self.rebinding_time)
            + addr(self.subnet_mask)
            + list(&self.routers)
            + list(&self.dns_servers)
            + bytes(self.client_id)
            + bytes(self.parameter_request_list)
            + self.max_message_size.map_or(0, |_| 4)
            + bytes(self.hostname)
            + bytes(self.message)
            + bytes(self.relay_agent_info)
            + 1
    }

    /// The number of bytes [`Self::emit`] writes: the 240-byte header, the
    /// options and the end option, padded to at least [`MIN_EMIT_LEN`].
    pub fn buffer_len(&self) -> usize {
        (DhcpPacket::<&[u8]>::HEADER_LEN + self.options_len()).max(MIN_EMIT_LEN)
    }

    /// Writes the message into the start of `out` and returns its length
    /// ([`Self::buffer_len`]). Options are written in the order 53, 54, 50,
    /// 51, 58, 59, 1, 3, 6, 61, 55, 57, 12, 56, 82 (last, RFC 3046 §2.1),
    /// then end and zero padding up to [`MIN_EMIT_LEN`] (the BOOTP minimum
    /// many relays and servers expect). `sname` and `file` are zeroed.
    ///
    /// A byte option longer than 255 bytes is written as consecutive
    /// pieces of 255 bytes and a last shorter one (RFC 3396 §5), which
    /// [`Self::parse`] joins again.
    ///
    /// Errors: [`Error::BufferTooSmall`], [`Error::BadHlen`] (`hlen` > 16).
    /// Nothing is guaranteed about `out` after an error.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        if self.hlen > 16 {
            return Err(Error::BadHlen);
        }
        let total = self.buffer_len();
        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let mut p = DhcpPacket::new_unchecked(&mut *out);
        p.set_op(self.op);
        p.set_htype(self.htype);
        p.set_hlen(self.hlen);
        p.set_hops(self.hops);
        p.set_xid(self.xid);
        p.set_secs(self.secs);
        p.set_flags(if self.broadcast { FLAG_BROADCAST } else { 0 });
        p.set_ciaddr(self.ciaddr);
        p.set_yiaddr(self.yiaddr);
        p.set_siaddr(self.siaddr);
        p.set_giaddr(self.giaddr);
        p.set_chaddr_raw(&self.chaddr);
        p.clear_sname_file();
        p.set_cookie();
        let mut w = Writer {
            buf: &mut out[f::OPTIONS..],
            pos: 0,
        };
        w.opt(opt::MESSAGE_TYPE, &[self.message_type as u8]);
        if let Some(a) = self.server_id {
            w.opt(opt::SERVER_ID, &a.octets());
        }
        if let Some(a) = self.requested_ip {
            w.opt(opt::REQUESTED_IP, &a.octets());
        }
        if let Some(v) = self.lease_time {
            w.opt(opt::LEASE_TIME, &v.to_be_bytes());
        }
        if let Some(v) = self.renewal_time {
            w.opt(opt::RENEWAL_TIME, &v.to_be_bytes());
        }
        if let Some(v) = self.rebinding_time {
            w.opt(opt::REBINDING_TIME, &v.to_be_bytes());
        }
        if let Some(a) = self.subnet_mask {
            w.opt(opt::SUBNET_MASK, &a.octets());
        }
        w.addrs(opt::ROUTER, &self.routers);
        w.addrs(opt::DNS, &self.dns_servers);
        if let Some(d) = self.client_id {
            w.opt(opt::CLIENT_ID, d);
        }
        if let Some(d) = self.parameter_request_list {
            w.opt(opt::PARAMETER_REQUEST_LIST, d);
        }
        if let Some(v) = self.max_message_size {
            w.opt(opt::MAX_MESSAGE_SIZE, &v.to_be_bytes());
        }
        if let Some(d) = self.hostname {
            w.opt(opt::HOSTNAME, d);
        }
        if let Some(d) = self.message {
            w.opt(opt::MESSAGE, d);
        }
        if let Some(d) = self.relay_agent_info {
            w.opt(opt::RELAY_AGENT_INFO, d);
        }
        w.buf[w.pos] = opt::END;
        w.pos += 1;
        w.buf[w.pos..].fill(0);
        Ok(total)
    }
}

/// Messages are padded to at least this many bytes when emitted (the
/// BOOTP message size of RFC 951, which RFC 1542 §2.1 asks relays to accept
/// and many implementations still send).
pub const MIN_EMIT_LEN: usize = 300;

/// Longest piece of one option instance (its length is one byte).
const MAX_PIECE: usize = 255;

/// Bytes an option with `n` data bytes takes on the wire: code and length
/// per piece of at most [`MAX_PIECE`] bytes (one empty piece for `n` = 0).
fn encoded_len(n: usize) -> usize {
    n + 2 * n.div_ceil(MAX_PIECE).max(1)
}

/// Option writer over a buffer already checked to be large enough.
struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    /// Writes option `code` with `data`, split into pieces of at most
    /// [`MAX_PIECE`] bytes (RFC 3396) when longer.
    fn opt(&mut self, code: u8, data: &[u8]) {
        let mut rest = data;
        loop {
            let (piece, tail) = rest.split_at(rest.len().min(MAX_PIECE));
            self.buf[self.pos] = code;
            self.buf[self.pos + 1] = piece.len() as u8;
            self.buf[self.pos + 2..self.pos + 2 + piece.len()].copy_from_slice(piece);
            self.pos += 2 + piece.len();
            rest = tail;
            if rest.is_empty() {
                break;
            }
        }
    }

    fn addrs(&mut self, code: u8, l: &AddrList) {
        if l.is_empty() {
            return;
        }
        self.buf[self.pos] = code;
        self.buf[self.pos + 1] = (4 * l.len()) as u8;
        self.pos += 2;
        for a in l {
            self.buf[self.pos..self.pos + 4].copy_from_slice(&a.octets());
            self.pos += 4;
        }
    }
}
