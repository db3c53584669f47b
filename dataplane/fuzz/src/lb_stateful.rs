//! The `lb_stateful` target: one balancer lcore ([`LbCore`] inside an
//! engine worker on in-memory queues, [`ManualClock`]) serving three VIPs
//! at once — a spliced HTTP VIP (round robin, one backend that never
//! answers ARP), a TLS-terminated VIP (a real [`TlsContext`] with a lab
//! certificate) and a session-aware TLS pass-through VIP (with a
//! [`SessionShared`] table the harness keeps up like the control thread) —
//! driven by an arbitrary sequence of operations decoded from the input:
//!
//! * **client frame** toward one VIP from one of 16 clients: flags, a
//!   sequence number that is plausible (the client's next byte, or a
//!   retransmission from what the appliance acknowledged), nudged or raw,
//!   an acknowledgement that is plausible (the appliance's next in-order
//!   byte, learned from the frames it sent on the client queue) or raw;
//!   payload raw, a captured TLS ClientHello (whole or a piece), or
//!   generated — for the TLS VIP the output of a real rustls client fed
//!   with what the appliance sent, so handshakes complete and requests
//!   reach the backend leg; options well-formed (SYN options, timestamps
//!   echoing the appliance's, SACK blocks) or raw bytes;
//! * **backend frame** on a backend leg the appliance opened (learned from
//!   the SYNs it sent on the backend queue): SYN-ACK, data (raw, an HTTP
//!   response or a captured ServerHello), FIN, RST, raw flags;
//! * **clock advance** by milliseconds to minutes, in up to 16 ticks;
//! * **board republish**, as the control thread does on health changes and
//!   reloads: one pool's policy, its backends' state (up, down, draining),
//!   weight, connection limit and the other lcores' connection counts;
//! * **garbage**: raw Ethernet payloads, or raw TCP bytes in a valid IPv4
//!   packet.
//!
//! Checksums are valid unless the operation asks for a corrupt one (the
//! appliance drops bad-checksum segments; the fuzzer would otherwise never
//! get past them). ARP requests for the live backends are answered.
//!
//! Oracles, after every operation: no panic; every TCP frame the appliance
//! sends is a well-formed IPv4/TCP frame with valid checksums (but a
//! spliced flow's data or ACK segment forwarded from a corrupt one: its
//! checksum is carried over, still wrong, and it carries no SYN, FIN or
//! RST; see `check_sent`), from the VIP
//! on the client port and from the local address on the backend port;
//! every monotonic counter of the published [`LbCounters`] and TLS counters
//! never decreases; the documented sums hold (`syn_cookies = syn_cache_full
//! + syn_rate_limited`, `tls_closed = tls_completed + tls_failed`,
//! `sa_fallback_busy = sa_fallback_session_busy + sa_fallback_backend`,
//! after a tick `tls_accepted = tls_closed + tls_active`); the flow table
//! and hold buffer stay within their bounds; frames sent per input frame
//! stay bounded (8, plus what the data injected so far could fill, plus
//! the client segments held for a connecting backend, released one for
//! one by its SYN-ACK). At
//! the end, after the clock has run past every timeout (idle, linger, TLS
//! handshake, SYN cache, hello wait, backend SYN retries) with no more
//! input: no flow, no held segment, no connecting flow, no terminated
//! connection, no half-open SYN cache entry, no active connection on any
//! backend.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use qsplice_lb::tcp::{write_segment, write_syn_options, Segment, SynOptions};
use qsplice_lb::{
    BackendCounters, EventKind, LbConf, LbCore, LbCounters, LbShared, PoolBoard, SessionShared,
    SharedLbCounters, TlsVip, VipConf, HOLD_MAX,
};
use qsplice_netdev::mem::{ManualClock, VecFrame};
use qsplice_pool::{Backend, BackendState, Policy, Snapshot};
use qsplice_sessions::SessionTable;
use qsplice_splice::isn::IsnSecret;
use qsplice_tls::TlsContext;
use qsplice_wire::{Ipv4Packet, MacAddr, TcpFlags, TcpPacket};

use crate::lb::{arp_reply, frame, worker, BMAC, CMAC, LOCAL, PEER, VIP, W};

/// Operations per input at most.
const MAX_OPS: usize = 64;
/// VIP ports: spliced HTTP, TLS-terminated, session-aware pass-through.
const VIP_PORTS: [u16; 3] = [80, 443, 8443];
const HTTP: usize = 0;
const TLS: usize = 1;
const SA: usize = 2;
/// Clients per VIP: 2 addresses × 8 ports.
const CLIENTS: usize = 16;
/// Backends that answer ARP, and one that never does (pool 0 only).
const SERVERS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 10, 2, 11),
    Ipv4Addr::new(10, 10, 2, 12),
    Ipv4Addr::new(10, 10, 2, 13),
];
const DEAD: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 14);
const MAX_FLOWS: usize = 32;
/// Maglev table size of the harness's snapshots (a prime; small, so a
/// republished board is cheap).
const MAGLEV_SMALL: usize = 257;
const IDLE_MS: u64 = 5_000;
const LINGER_MS: u64 = 500;
const HANDSHAKE_MS: u64 = 4_000;
/// Backend legs remembered (oldest forgotten first).
const MAX_LEGS: usize = 48;
/// Bytes of a stream kept for retransmissions / not yet read.
const STREAM_MAX: usize = 64 * 1024;
/// Largest payload the harness puts in one segment.
const SEG_MAX: usize = 1400;
/// Counters that are gauges (all others are monotonic).
const GAUGES: [&str; 4] = [
    "flows_active",
    "flows_connecting",
    "tls_active",
    "syn_cache_active",
];

const CLIENT_HELLOS: [&[u8]; 8] = [
    include_bytes!("../../wire/tests/fixtures/tls/ch-curl.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-openssl-sni-alpn.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-openssl-tls12-only.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-tls12-resume-sessid.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-tls12-ticket.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-tls13-psk.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-go-x25519mlkem768.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/ch-chromium-x25519mlkem768.bin"),
];
const SERVER_HELLOS: [&[u8]; 4] = [
    include_bytes!("../../wire/tests/fixtures/tls/sh-tls12-new-session.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/sh-tls12-resumed.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/sh-tls13-full.bin"),
    include_bytes!("../../wire/tests/fixtures/tls/sh-tls13-psk-accepted.bin"),
];

/// The TLS VIP's context (built once per process: key generation is slow)
/// and the lab CA the harness's clients trust.
struct Lab {
    ctx: Arc<TlsContext>,
    roots: Arc<rustls::RootCertStore>,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        use qsplice_tls::certgen::{KeyAlg, LabCa};
        let dir = std::env::temp_dir().join(format!("qsplice-fuzz-lbst-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca = LabCa::new().expect("lab CA");
        let leaf = ca.leaf(KeyAlg::EcdsaP256, &["vip.test"]).expect("lab leaf");
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, &leaf.cert_pem).expect("write cert");
        std::fs::write(&k, &leaf.key_pem).expect("write key");
        let ctx = TlsContext::new(&qsplice_tls::TlsSettings {
            certs: vec![qsplice_tls::certs::CertSpec {
                cert: c,
                key: k,
                names: vec![],
                ocsp: None,
            }],
            handshake_timeout: Duration::from_millis(HANDSHAKE_MS),
            ..Default::default()
        })
        .expect("TLS context");
        let _ = std::fs::remove_dir_all(&dir);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("CA into the root store");
        Lab {
            ctx: Arc::new(ctx),
            roots: Arc::new(roots),
        }
    })
}

/// Client configurations of one input: TLS 1.3 with X25519MLKEM768
/// first, TLS 1.2, TLS 1.3 with classic groups only (each with its own
/// in-memory session store, so a later connection may resume).
fn client_configs() -> [Arc<rustls::ClientConfig>; 3] {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    let make = |v: &'static rustls::SupportedProtocolVersion, pq: bool| {
        let mut p = default_provider();
        p.kx_groups = if pq {
            vec![
                kx_group::X25519MLKEM768,
                kx_group::X25519,
                kx_group::SECP256R1,
            ]
        } else {
            vec![kx_group::X25519, kx_group::SECP256R1]
        };
        let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(&[v])
            .expect("protocol version")
            .with_root_certificates(lab().roots.clone())
            .with_no_client_auth();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(c)
    };
    [
        make(&rustls::version::TLS13, true),
        make(&rustls::version::TLS12, false),
        make(&rustls::version::TLS13, false),
    ]
}

/// `QSPLICE_FUZZ_TRACE=1`: print each frame in and out and the counters at
/// the end (to see what an input reaches; e.g. when running one file).
fn tracing() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("QSPLICE_FUZZ_TRACE").is_some_and(|v| v != "0"))
}

fn trace_frame(dir: &str, port: usize, f: &[u8]) {
    if !tracing() {
        return;
    }
    let Some(ip) = f.get(14..).and_then(|d| Ipv4Packet::new_checked(d).ok()) else {
        eprintln!("  {dir} port {port}: {} bytes, not IPv4", f.len());
        return;
    };
    match TcpPacket::new_checked(ip.payload()) {
        Ok(t) => eprintln!(
            "  {dir} port {port}: {}:{} > {}:{} {:?} seq {} ack {} win {} len {}{}",
            ip.src_addr(),
            t.src_port(),
            ip.dst_addr(),
            t.dst_port(),
            t.flags(),
            t.seq_number(),
            t.ack_number(),
            t.window_len(),
            t.payload().len(),
            if t.verify_checksum(ip.src_addr(), ip.dst_addr()) {
                ""
            } else {
                " BAD-CSUM"
            }
        ),
        Err(_) => eprintln!(
            "  {dir} port {port}: IPv4 proto {} (not TCP)",
            ip.protocol()
        ),
    }
}

/// The input, read front to back; zeros once it runs out.
struct In<'a> {
    d: &'a [u8],
    i: usize,
}

impl<'a> In<'a> {
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Up to `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let s = self.i.min(self.d.len());
        let e = (s + n).min(self.d.len());
        self.i = s + n;
        &self.d[s..e]
    }
}

/// Serial-number comparison: `a` after `b`.
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// One TCP endpoint the harness plays (a client, or a backend on a leg the
/// appliance opened) and what it learned of the appliance's side.
#[derive(Default)]
struct Ep {
    /// Our ISN and next sequence number.
    isn: u32,
    snd_nxt: u32,
    /// We sent a SYN (client) / SYN-ACK (backend).
    open: bool,
    /// Timestamps negotiated (the appliance's SYN / SYN-ACK carried them).
    ts: bool,
    /// Our stream from `isn + 1` (bounded), for retransmissions.
    sent: Vec<u8>,
    /// The appliance's ISN, next in-order byte, last acknowledgement, TSval.
    peer_isn: Option<u32>,
    rcv_nxt: u32,
    peer_ack: Option<u32>,
    peer_tsval: u32,
    peer_fin: bool,
    /// In-order bytes from the appliance the TLS client has not read yet.
    rx: Vec<u8>,
    /// The rustls client of a TLS VIP connection, and its unsent output.
    tls: Option<Box<rustls::ClientConnection>>,
    tls_dead: bool,
    tx: Vec<u8>,
    request_sent: bool,
}

impl Ep {
    fn restart(&mut self, isn: u32) {
        *self = Ep {
            isn,
            snd_nxt: isn.wrapping_add(1),
            open: true,
            ..Ep::default()
        };
    }

    /// Learn from a segment the appliance sent to this endpoint.
    fn learn(&mut self, seq: u32, ack: Option<u32>, flags: TcpFlags, ts: Option<u32>, pl: &[u8]) {
        if flags.contains(TcpFlags::RST) {
            return;
        }
        if flags.contains(TcpFlags::SYN) {
            if self.peer_isn != Some(seq) {
                self.peer_isn = Some(seq);
                self.rcv_nxt = seq.wrapping_add(1);
                self.rx.clear();
                self.peer_fin = false;
            }
            self.ts = ts.is_some();
        } else if self.peer_isn.is_none() {
            return;
        }
        if let Some(a) = ack {
            if self.peer_ack.is_none_or(|p| after(a, p)) {
                self.peer_ack = Some(a);
            }
        }
        if let Some(v) = ts {
            self.peer_tsval = v;
        }
        let start = seq.wrapping_add(u32::from(flags.contains(TcpFlags::SYN)));
        let end = start.wrapping_add(pl.len() as u32);
        if !pl.is_empty() && !after(start, self.rcv_nxt) && after(end, self.rcv_nxt) {
            let new = &pl[self.rcv_nxt.wrapping_sub(start) as usize..];
            if self.rx.len() + new.len() <= STREAM_MAX {
                self.rx.extend_from_slice(new);
            }
            self.rcv_nxt = end;
        }
        if flags.contains(TcpFlags::FIN) && end == self.rcv_nxt && !self.peer_fin {
            self.peer_fin = true;
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        }
    }

    /// Record `pl` as sent at `snd_nxt` and advance.
    fn sent_new(&mut self, pl: &[u8], fin: bool) {
        if self.sent.len() + pl.len() <= STREAM_MAX {
            self.sent.extend_from_slice(pl);
        }
        self.snd_nxt = self
            .snd_nxt
            .wrapping_add(pl.len() as u32)
            .wrapping_add(u32::from(fin));
    }

    /// What we sent from the appliance's last acknowledgement on (a
    /// retransmission), at most `n` bytes, and its sequence number.
    fn unacked(&self, n: usize) -> (u32, Vec<u8>) {
        let una = self.peer_ack.unwrap_or(self.snd_nxt);
        let off = una.wrapping_sub(self.isn.wrapping_add(1)) as usize;
        let data = self
            .sent
            .get(off..)
            .map(|d| d[..d.len().min(n)].to_vec())
            .unwrap_or_default();
        (una, data)
    }

    /// Feed the rustls client what the appliance sent, let it write (the
    /// request once the handshake is done, close_notify when `v & 4`) and
    /// return up to `n` bytes of its output. The first call makes the
    /// client (`v & 3`: TLS 1.3 + X25519MLKEM768, TLS 1.2, TLS 1.3 classic).
    fn tls_step(&mut self, cfgs: &[Arc<rustls::ClientConfig>; 3], v: u8, n: usize) -> Vec<u8> {
        if self.tls.is_none() && !self.tls_dead {
            let name = rustls::pki_types::ServerName::try_from("vip.test").expect("name");
            match rustls::ClientConnection::new(cfgs[usize::from(v & 3) % 3].clone(), name) {
                Ok(c) => self.tls = Some(Box::new(c)),
                Err(_) => self.tls_dead = true,
            }
        }
        if let Some(c) = self.tls.as_mut() {
            let mut off = 0;
            while off < self.rx.len() && !self.tls_dead {
                match c.read_tls(&mut &self.rx[off..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => off += k,
                }
                if c.process_new_packets().is_err() {
                    self.tls_dead = true;
                }
            }
            self.rx.drain(..off);
            let mut buf = [0u8; 4096];
            while let Ok(k) = c.reader().read(&mut buf) {
                if k == 0 {
                    break;
                }
            }
            if !self.tls_dead && !c.is_handshaking() && !self.request_sent {
                self.request_sent = true;
                let _ = c
                    .writer()
                    .write_all(b"GET / HTTP/1.1\r\nHost: vip.test\r\nUser-Agent: fuzz\r\n\r\n");
            }
            if !self.tls_dead && v & 4 == 4 && self.request_sent {
                c.send_close_notify();
            }
            while c.wants_write() && self.tx.len() < STREAM_MAX {
                if c.write_tls(&mut self.tx).is_err() {
                    break;
                }
            }
        }
        let k = self.tx.len().min(n);
        self.tx.drain(..k).collect()
    }
}

/// A backend leg the appliance opened.
struct Leg {
    server: SocketAddrV4,
    lport: u16,
    ep: Ep,
}

/// A parsed frame the appliance sent.
struct Sent {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    ts: Option<u32>,
    payload: Vec<u8>,
}

/// The TCP flags of `f` if it is a TCP/IPv4 frame whose TCP checksum is
/// wrong (what the appliance may forward with its checksum carried over).
fn bad_tcp(f: &[u8]) -> Option<TcpFlags> {
    let ip = Ipv4Packet::new_checked(f.get(14..)?).ok()?;
    if ip.protocol() != 6 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (!tcp.verify_checksum(ip.src_addr(), ip.dst_addr())).then(|| tcp.flags())
}

/// Check a frame the appliance sent: well-formed IPv4/TCP, both checksums
/// valid — except a spliced flow's data or ACK segment forwarded from a
/// frame `bad_in` (the one just injected) whose TCP checksum was wrong: the
/// appliance carries a checksum over (RFC 1624) without summing the
/// segment, so a wrong one stays wrong. Such a frame must have no SYN, FIN
/// or RST (segments that change state are always checked), and neither
/// must the frame it came from.
fn check_sent(f: &[u8], bad_in: Option<TcpFlags>) -> Option<Sent> {
    if f.len() < 14 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = Ipv4Packet::new_checked(&f[14..]).expect("emitted IPv4 parses");
    assert!(ip.verify_checksum(), "emitted IPv4 checksum");
    if ip.protocol() != 6 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).expect("emitted TCP parses");
    let state = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST;
    let carried = bad_in.is_some_and(|b| !b.intersects(state)) && !tcp.flags().intersects(state);
    assert!(
        carried || tcp.verify_checksum(ip.src_addr(), ip.dst_addr()),
        "emitted TCP checksum ({}:{} -> {}:{}, flags {:?}; bad frame in: {bad_in:?})",
        ip.src_addr(),
        tcp.src_port(),
        ip.dst_addr(),
        tcp.dst_port(),
        tcp.flags()
    );
    Some(Sent {
        src: SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
        dst: SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        ts: SynOptions::timestamps(tcp.options()).map(|t| t.0),
        payload: tcp.payload().to_vec(),
    })
}

fn server_mac(ip: Ipv4Addr) -> MacAddr {
    MacAddr([2, 0xcc, 0, 0, 2, ip.octets()[3]])
}

fn client_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 10, 1, 2 + (i / 8) as u8),
        40000 + (i % 8) as u16,
    )
}

fn client_index(a: SocketAddrV4) -> Option<usize> {
    let o = a.ip().octets();
    let hi = usize::from(o[3].checked_sub(2)?);
    let lo = usize::from(a.port().checked_sub(40000)?);
    (o[..3] == [10, 10, 1] && hi < 2 && lo < 8).then_some(hi * 8 + lo)
}

/// Which counters (in `for_each` order) are gauges.
fn gauges() -> &'static [bool] {
    static G: OnceLock<Vec<bool>> = OnceLock::new();
    G.get_or_init(|| {
        counter_values(&LbCounters::default())
            .iter()
            .map(|(n, _)| GAUGES.contains(n))
            .collect()
    })
}

fn counter_values(c: &LbCounters) -> Vec<(&'static str, u64)> {
    let mut v = Vec::with_capacity(96);
    c.for_each(|n, x| v.push((n, x)));
    v
}

/// Options for a non-SYN segment: timestamps (when negotiated) and up to
/// three SACK blocks above `rcv_nxt`, NOP-padded.
fn ack_options(ep: &Ep, now_ms: u32, sack: u8, r: &mut In<'_>) -> Vec<u8> {
    let mut o = Vec::with_capacity(40);
    if ep.ts {
        o.extend_from_slice(&[1, 1, 8, 10]);
        o.extend_from_slice(&now_ms.to_be_bytes());
        o.extend_from_slice(&ep.peer_tsval.to_be_bytes());
    }
    let blocks = usize::from(sack % 4).min((40 - o.len() - 4) / 8);
    if blocks > 0 {
        o.extend_from_slice(&[1, 1, 5, 2 + 8 * blocks as u8]);
        for _ in 0..blocks {
            let l = ep.rcv_nxt.wrapping_add(u32::from(r.u16()));
            o.extend_from_slice(&l.to_be_bytes());
            o.extend_from_slice(&l.wrapping_add(u32::from(r.u16()) + 1).to_be_bytes());
        }
    }
    o
}

/// Raw option bytes: a multiple of 4, at most 40.
fn raw_options(r: &mut In<'_>) -> Vec<u8> {
    let n = usize::from(r.u8() % 11) * 4;
    let mut o = r.bytes(n).to_vec();
    o.resize(n, 1);
    o
}

fn syn_options(r: &mut In<'_>, now_ms: u32, tsecr: u32) -> Vec<u8> {
    let b = r.u8();
    let mss = r.u16();
    let ws = r.u8();
    let o = SynOptions {
        mss: (b & 1 == 1).then_some(if b & 0x10 == 0x10 { mss } else { 1460 }),
        ws: (b & 2 == 2).then_some(ws % 16),
        sack_ok: b & 4 == 4,
        ts: (b & 8 == 8).then_some((now_ms, tsecr)),
    };
    let mut buf = [0u8; 40];
    let n = write_syn_options(&mut buf, &o);
    buf[..n].to_vec()
}

/// A TCP/IPv4 frame with a valid checksum, or a corrupt one.
#[allow(clippy::too_many_arguments)]
fn build(
    from: MacAddr,
    to: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: &[u8],
    payload: &[u8],
    corrupt: bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + 20 + 60 + payload.len() + 64];
    let len = write_segment(
        &mut buf,
        &Segment {
            src_mac: from,
            dst_mac: to,
            src,
            dst,
            seq,
            ack,
            flags,
            window,
            options,
            payload,
        },
    )
    .expect("segment fits");
    buf.truncate(len);
    if corrupt {
        buf[34 + 16] ^= 0x5a;
    }
    buf
}

/// The pools: HTTP (round robin; the second backend never answers ARP),
/// TLS (round robin), session-aware (its fallback scheduler: round robin).
fn pools() -> Vec<(Policy, Vec<Backend>)> {
    let be = |ip: Ipv4Addr, port: u16| Backend::new(SocketAddrV4::new(ip, port));
    vec![
        (
            Policy::RoundRobin,
            vec![be(SERVERS[0], 80), be(DEAD, 80), be(SERVERS[1], 80)],
        ),
        (
            Policy::RoundRobin,
            vec![be(SERVERS[0], 8080), be(SERVERS[1], 8080)],
        ),
        (
            Policy::RoundRobin,
            vec![
                be(SERVERS[0], 443),
                be(SERVERS[1], 443),
                be(SERVERS[2], 443),
            ],
        ),
    ]
}

struct Rig {
    w: W,
    clock: ManualClock,
    /// The lcore's shared handles: published counters, per-backend
    /// counters, TLS counters, the session table.
    shared: LbShared<VecFrame>,
    sessions: Arc<SessionShared>,
    tables: Vec<SessionTable>,
    /// Client endpoints, `vip * CLIENTS + client`.
    clients: Vec<Ep>,
    legs: Vec<Leg>,
    cfgs: Option<[Arc<rustls::ClientConfig>; 3]>,
    /// Last published counters (monotonic check).
    last: Vec<(&'static str, u64)>,
    last_tls: Vec<u64>,
    /// Payload bytes injected so far (what the appliance may release
    /// later), and connections started on the TLS VIP (a server flight each).
    injected: usize,
    tls_syns: usize,
    /// ARP replies to inject after a drain.
    arp: Vec<Vec<u8>>,
    /// Board versions published so far.
    version: u64,
    /// The flags of the frame being injected if its TCP checksum is wrong
    /// (see [`check_sent`]); `None` outside [`Rig::inject`].
    bad_in: Option<TcpFlags>,
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::default();
        clock.advance_ms(100_000);
        let lab = lab();
        let pools = pools();
        let sizes: Vec<usize> = pools.iter().map(|p| p.1.len()).collect();
        let board = Arc::new(PoolBoard::new(
            pools
                .into_iter()
                .map(|(pol, b)| Snapshot::build(1, pol, b, vec![], MAGLEV_SMALL))
                .collect(),
        ));
        let sessions = SessionShared::new(3, (0x5e55, 0x10a5), 256, 4 * MAX_FLOWS);
        let shared = LbShared {
            board,
            counters: Arc::new(SharedLbCounters::default()),
            hists: Default::default(),
            access: None,
            flowsync: None,
            backends: Arc::new(BackendCounters::new(&sizes)),
            inboxes: Arc::new(vec![ArrayQueue::new(8)]),
            health: None,
            tls: Default::default(),
            sessions: Some(sessions.clone()),
        };
        let vip = |i: usize| SocketAddrV4::new(VIP, VIP_PORTS[i]);
        let conf = LbConf {
            vips: vec![
                VipConf {
                    addr: vip(HTTP),
                    pool: 0,
                    session_aware: false,
                    open: true,
                },
                VipConf {
                    addr: vip(TLS),
                    pool: 1,
                    session_aware: false,
                    open: true,
                },
                VipConf {
                    addr: vip(SA),
                    pool: 2,
                    session_aware: true,
                    open: true,
                },
            ],
            client_port: 0,
            backend_port: 1,
            local: LOCAL,
            sport_min: 20000,
            sport_max: 20063,
            lcore: 0,
            lcores: 1,
            max_flows: MAX_FLOWS,
            max_connecting: 8,
            syn_rto_ms: 200,
            syn_retries: 2,
            retries: 1,
            idle_timeout_ms: IDLE_MS,
            linger_ms: LINGER_MS,
            client_mss: 1460,
            min_mss: 536,
            congestion: qsplice_lb::Congestion::Cubic,
            syn_backlog: 4,
            syn_rate: 20,
            backend_mss: 1460,
            vip_ws: 7,
            hz: 1_000_000_000,
            secret: IsnSecret::from_bytes([9; 16]),
            health_path: "/".into(),
            health_status: 200,
            tls_vips: vec![TlsVip {
                addr: vip(TLS),
                pool: 1,
                ctx: Arc::new(qsplice_lb::ArcSwap::new(lab.ctx.clone())),
                x_forwarded_for: true,
            }],
            tls_max_conns: 8,
            access_sample: 1,
            content: Vec::new(),
            kernel_ports: 0,
        };
        let lb = LbCore::new(conf, shared.clone());
        let mut neigh = SERVERS.to_vec();
        neigh.push(DEAD);
        let w = worker(lb, &clock, &neigh);
        let mut r = Rig {
            w,
            clock,
            shared,
            sessions,
            tables: (0..3).map(|_| SessionTable::new(256, 60_000)).collect(),
            clients: (0..3 * CLIENTS).map(|_| Ep::default()).collect(),
            legs: Vec::new(),
            cfgs: None,
            last: Vec::new(),
            last_tls: Vec::new(),
            injected: 0,
            tls_syns: 0,
            arp: Vec::new(),
            version: 1,
            bad_in: None,
        };
        r.w.poll();
        for ip in SERVERS {
            r.w.queue_mut(1)
                .rx
                .push_back(VecFrame::from_bytes(&arp_reply(
                    BMAC,
                    server_mac(ip),
                    ip,
                    LOCAL,
                )));
        }
        r.w.poll();
        r.drain();
        r.check_counters(false);
        r
    }

    fn now_ms(&self) -> u32 {
        (qsplice_netdev::Clock::now(&self.clock) / 1_000_000) as u32
    }

    /// Take everything the appliance sent, check it and learn from it.
    /// Returns the number of frames.
    fn drain(&mut self) -> usize {
        self.w.finish();
        let mut n = 0;
        for port in 0..2 {
            let frames: Vec<VecFrame> = self.w.queue_mut(port).tx.drain(..).collect();
            for f in frames {
                n += 1;
                let f = f.into_vec();
                trace_frame("out", port, &f);
                if f.len() >= 42 && f[12..14] == [0x08, 0x06] {
                    // An ARP request for a live backend: answer it.
                    let target = Ipv4Addr::new(f[38], f[39], f[40], f[41]);
                    if port == 1 && f[21] == 1 && SERVERS.contains(&target) {
                        self.arp
                            .push(arp_reply(BMAC, server_mac(target), target, LOCAL));
                    }
                    continue;
                }
                let bad = bad_tcp(&f).is_some();
                let Some(s) = check_sent(&f, self.bad_in) else {
                    continue;
                };
                if bad {
                    // One forwarded copy at most, never learned from (the
                    // endpoint drops it).
                    assert!(self.bad_in.take().is_some(), "two frames with bad checksums");
                    continue;
                }
                if port == 0 {
                    assert_eq!(*s.src.ip(), VIP, "client port frame not from the VIP");
                    self.learn_client(&s);
                } else {
                    assert_eq!(*s.src.ip(), LOCAL, "backend port frame not from local");
                    self.learn_backend(&s);
                }
            }
        }
        n
    }

    fn learn_client(&mut self, s: &Sent) {
        let (Some(v), Some(c)) = (
            VIP_PORTS.iter().position(|p| *p == s.src.port()),
            client_index(s.dst),
        ) else {
            return;
        };
        let ack = s.flags.contains(TcpFlags::ACK).then_some(s.ack);
        self.clients[v * CLIENTS + c].learn(s.seq, ack, s.flags, s.ts, &s.payload);
    }

    fn learn_backend(&mut self, s: &Sent) {
        let i = self
            .legs
            .iter()
            .position(|l| l.server == s.dst && l.lport == s.src.port());
        let syn = s.flags.contains(TcpFlags::SYN) && !s.flags.contains(TcpFlags::ACK);
        let i = match i {
            Some(i) => i,
            None if syn => {
                if self.legs.len() >= MAX_LEGS {
                    self.legs.remove(0);
                }
                self.legs.push(Leg {
                    server: s.dst,
                    lport: s.src.port(),
                    ep: Ep::default(),
                });
                self.legs.len() - 1
            }
            None => return,
        };
        let ep = &mut self.legs[i].ep;
        if syn && ep.peer_isn != Some(s.seq) {
            // A new connection on a reused tuple.
            *ep = Ep::default();
        }
        let ack = s.flags.contains(TcpFlags::ACK).then_some(s.ack);
        ep.learn(s.seq, ack, s.flags, s.ts, &s.payload);
    }

    /// The control thread's part of session-aware dispatch: learning
    /// events into the tables, a new snapshot when they changed.
    fn sessions_step(&mut self) {
        let ms = u64::from(self.now_ms());
        let mut dirty = false;
        while let Some(ev) = self.sessions.events.pop() {
            if let Some(t) = self.tables.get_mut(usize::from(ev.pool)) {
                match ev.kind {
                    EventKind::Open => t.learn(ev.key, ev.backend, ms),
                    EventKind::Close => t.finished(ev.key, ev.backend, ms),
                    EventKind::Refused => t.forget(ev.key, ev.backend),
                }
                dirty = true;
            }
        }
        if dirty {
            let snap: Vec<_> = self.tables.iter().map(SessionTable::snapshot).collect();
            self.sessions.snap.store(Arc::new(snap));
        }
    }

    /// Monotonic counters, documented sums, table bounds. `ticked`: the
    /// last poll ran the lcore's tick (the TLS gauge is current).
    fn check_counters(&mut self, ticked: bool) {
        let lb = self.w.service();
        assert!(lb.flows() <= MAX_FLOWS, "flow table over its size");
        assert!(lb.held() <= HOLD_MAX, "hold buffer over its size");
        let c = self.shared.counters.snapshot();
        let now = counter_values(&c);
        for (((name, old), (_, new)), gauge) in self.last.iter().zip(&now).zip(gauges()) {
            if !gauge {
                assert!(new >= old, "counter {name} went back: {old} -> {new}");
            }
        }
        self.last = now;
        assert_eq!(
            c.syn_cookies,
            c.syn_cache_full + c.syn_rate_limited,
            "syn_cookies = syn_cache_full + syn_rate_limited"
        );
        assert!(
            c.syn_received >= c.syn_stateful + c.syn_cookies,
            "syn_received >= syn_stateful + syn_cookies"
        );
        assert_eq!(
            c.tls_closed,
            c.tls_completed + c.tls_failed,
            "tls_closed = tls_completed + tls_failed"
        );
        assert_eq!(
            c.sa_fallback_busy,
            c.sa_fallback_session_busy + c.sa_fallback_backend,
            "sa_fallback_busy = sa_fallback_session_busy + sa_fallback_backend"
        );
        assert_eq!(c.flows_active, lb.flows() as u64, "flows_active gauge");
        if ticked {
            assert_eq!(
                c.tls_accepted,
                c.tls_closed + c.tls_active,
                "tls_accepted = tls_closed + tls_active"
            );
        }
        let tls = self.shared.tls.load();
        let mut t = Vec::with_capacity(16);
        for s in tls.iter() {
            t.extend_from_slice(&[
                s.connections,
                s.handshakes,
                s.resumed,
                s.hello_retries,
                s.tls13,
                s.tls12,
                s.failures.iter().sum(),
                s.close_notify,
                s.bytes_in,
                s.bytes_out,
            ]);
            assert!(s.handshakes >= s.resumed, "resumed <= handshakes");
            assert_eq!(s.handshakes, s.tls13 + s.tls12, "handshakes by version");
        }
        if !self.last_tls.is_empty() && self.last_tls.len() == t.len() {
            for (i, (o, n)) in self.last_tls.iter().zip(&t).enumerate() {
                assert!(n >= o, "TLS counter #{i} went back: {o} -> {n}");
            }
        }
        if !t.is_empty() {
            self.last_tls = t;
        }
    }

    /// Live connections of any kind (for the timer output bound).
    fn live(&self) -> usize {
        let c = self.shared.counters.snapshot();
        (c.flows_active + c.tls_active + c.syn_cache_active) as usize
    }

    /// What one step may send: 8 frames, plus what the data injected so
    /// far (and the TLS server flights) could fill in 256-byte segments.
    fn allowance(&self) -> usize {
        8 + (self.injected + 8192 * self.tls_syns) / 256
    }

    /// Inject one frame, run the lcore, drain and check. Client segments
    /// held while a backend connects are released one for one by its
    /// SYN-ACK (a splice forwards segments, it does not coalesce them), so
    /// what is held before the step is allowed on top.
    fn inject(&mut self, port: usize, f: Vec<u8>) {
        let allowed = self.allowance() + self.w.service().held();
        trace_frame("in ", port, &f);
        self.bad_in = bad_tcp(&f);
        self.w
            .queue_mut(port)
            .rx
            .push_back(VecFrame::from_bytes(&f));
        self.w.poll();
        let n = self.drain();
        self.bad_in = None;
        assert!(
            n <= allowed,
            "{n} frames out for one frame in (allowed {allowed})"
        );
        self.answer_arp();
        self.sessions_step();
        self.check_counters(false);
    }

    fn answer_arp(&mut self) {
        for _ in 0..2 {
            if self.arp.is_empty() {
                return;
            }
            for a in std::mem::take(&mut self.arp) {
                self.w.queue_mut(1).rx.push_back(VecFrame::from_bytes(&a));
            }
            self.w.poll();
            self.drain();
        }
        self.arp.clear();
    }

    /// Advance the clock by `ms` in `steps` ticks.
    fn advance(&mut self, ms: u64, steps: u64) {
        let steps = steps.clamp(1, 16);
        for i in 0..steps {
            let live = self.live();
            let allowed = 16 + 8 * live + self.allowance();
            let chunk = ms / steps + u64::from(i < ms % steps);
            self.clock.advance_ms(chunk.max(1));
            if tracing() {
                eprintln!("  +{} ms", chunk.max(1));
            }
            self.w.poll();
            let n = self.drain();
            assert!(
                n <= allowed,
                "{n} frames out in one tick with {live} connections (allowed {allowed})"
            );
            self.answer_arp();
            self.sessions_step();
            self.check_counters(true);
        }
    }

    fn client_op(&mut self, r: &mut In<'_>) {
        let sel = r.u8();
        let vip = usize::from(sel % 3);
        let ci = usize::from(sel / 3) % CLIENTS;
        let ctl = r.u8();
        let pk = r.u8();
        let corrupt = ctl & 0x38 == 0x38;
        let flags = match ctl & 7 {
            0 => TcpFlags::SYN,
            1 => TcpFlags::ACK,
            2 => TcpFlags::ACK | TcpFlags::PSH,
            3 => TcpFlags::FIN | TcpFlags::ACK,
            4 => TcpFlags::RST,
            5 => TcpFlags::RST | TcpFlags::ACK,
            6 => TcpFlags::from_bits_truncate(u16::from(r.u8())),
            _ => TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK,
        };
        let seq_mode = (ctl >> 6) & 3;
        let raw_ack = pk & 0x80 == 0x80;
        let now_ms = self.now_ms();
        let src = client_addr(ci);
        let dst = SocketAddrV4::new(VIP, VIP_PORTS[vip]);
        let window = if pk & 0x40 == 0x40 { r.u16() } else { 0xffff };
        let idx = vip * CLIENTS + ci;
        let syn = flags.contains(TcpFlags::SYN);
        let (seq, payload) = if syn && seq_mode == 1 && self.clients[idx].open {
            (self.clients[idx].isn, Vec::new())
        } else if syn {
            let isn = r.u32();
            self.clients[idx].restart(isn);
            if vip == TLS {
                self.tls_syns += 1;
            }
            (isn, Vec::new())
        } else if seq_mode == 1 {
            let n = usize::from(r.u8()) * 8;
            self.clients[idx].unacked(n)
        } else {
            let payload = self.client_payload(idx, vip, pk & 3, r);
            let ep = &mut self.clients[idx];
            let seq = match seq_mode {
                0 => ep.snd_nxt,
                2 => r.u32(),
                _ => ep.snd_nxt.wrapping_add(i32::from(r.u16() as i16) as u32),
            };
            if seq_mode == 0 && !flags.contains(TcpFlags::RST) {
                ep.sent_new(&payload, flags.contains(TcpFlags::FIN));
            }
            (seq, payload)
        };
        let ep = &self.clients[idx];
        let ack = if raw_ack { r.u32() } else { ep.rcv_nxt };
        let options = match (pk >> 2) & 3 {
            0 if syn => syn_options(r, now_ms, 0),
            0 => ack_options(ep, now_ms, 0, r),
            1 => Vec::new(),
            2 => raw_options(r),
            _ if syn => syn_options(r, now_ms, ep.peer_tsval),
            _ => {
                let s = r.u8();
                ack_options(ep, now_ms, s, r)
            }
        };
        self.injected += payload.len();
        let f = build(
            PEER, CMAC, src, dst, seq, ack, flags, window, &options, &payload, corrupt,
        );
        self.inject(0, f);
    }

    /// A client's payload: none, raw bytes, a captured ClientHello (or a
    /// piece of one), or generated (the rustls client's output on the TLS
    /// VIP, a hello on the session-aware VIP, a request on the HTTP VIP).
    fn client_payload(&mut self, idx: usize, vip: usize, kind: u8, r: &mut In<'_>) -> Vec<u8> {
        match kind {
            0 => Vec::new(),
            1 => {
                let n = usize::from(r.u8()) * 6;
                r.bytes(n.min(SEG_MAX)).to_vec()
            }
            2 => {
                // Whole (up to a segment), or a piece: hellos split over
                // segments, out of order, overlapping.
                let h = CLIENT_HELLOS[usize::from(r.u8()) % CLIENT_HELLOS.len()];
                let s = r.u8();
                let (from, len) = match s {
                    0 => (0, SEG_MAX),
                    1 => (SEG_MAX, SEG_MAX),
                    _ => (usize::from(s & 0x1f) * 64, usize::from(s >> 5) * 200 + 5),
                };
                let from = from.min(h.len());
                let to = (from + len.min(SEG_MAX)).min(h.len());
                h[from..to].to_vec()
            }
            _ => match vip {
                TLS => {
                    let v = r.u8();
                    let cfgs = self.cfgs.get_or_insert_with(client_configs).clone();
                    self.clients[idx].tls_step(&cfgs, v, SEG_MAX)
                }
                SA => {
                    let h = CLIENT_HELLOS[usize::from(r.u8()) % CLIENT_HELLOS.len()];
                    h[..h.len().min(SEG_MAX)].to_vec()
                }
                _ => {
                    let n = usize::from(r.u8());
                    let mut req = b"GET /".to_vec();
                    req.extend_from_slice(&r.bytes(n % 32).to_vec());
                    req.extend_from_slice(b" HTTP/1.1\r\nHost: vip.test\r\n\r\n");
                    req
                }
            },
        }
    }

    fn backend_op(&mut self, r: &mut In<'_>) {
        let sel = usize::from(r.u8());
        let ctl = r.u8();
        let pk = r.u8();
        if self.legs.is_empty() {
            return self.garbage(1, r);
        }
        let li = sel % self.legs.len();
        let corrupt = ctl & 0x38 == 0x38;
        let flags = match ctl & 7 {
            0 => TcpFlags::SYN | TcpFlags::ACK,
            1 => TcpFlags::ACK,
            2 => TcpFlags::ACK | TcpFlags::PSH,
            3 => TcpFlags::FIN | TcpFlags::ACK,
            4 => TcpFlags::RST,
            5 => TcpFlags::RST | TcpFlags::ACK,
            6 => TcpFlags::from_bits_truncate(u16::from(r.u8())),
            _ => TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK,
        };
        let seq_mode = (ctl >> 6) & 3;
        let raw_ack = pk & 0x80 == 0x80;
        let window = if pk & 0x40 == 0x40 { r.u16() } else { 0xffff };
        let now_ms = self.now_ms();
        let (server, lport) = (self.legs[li].server, self.legs[li].lport);
        let syn = flags.contains(TcpFlags::SYN);
        let (seq, payload) = if syn {
            let ep = &mut self.legs[li].ep;
            if !(seq_mode == 1 && ep.open) {
                let isn = r.u32();
                let (peer, rcv, ts, tsv) = (ep.peer_isn, ep.rcv_nxt, ep.ts, ep.peer_tsval);
                ep.restart(isn);
                (ep.peer_isn, ep.rcv_nxt, ep.ts, ep.peer_tsval) = (peer, rcv, ts, tsv);
            }
            (ep.isn, Vec::new())
        } else if seq_mode == 1 {
            let n = usize::from(r.u8()) * 8;
            self.legs[li].ep.unacked(n)
        } else {
            let payload = match pk & 3 {
                0 => Vec::new(),
                1 => {
                    let n = usize::from(r.u8()) * 6;
                    r.bytes(n.min(SEG_MAX)).to_vec()
                }
                2 => {
                    let h = SERVER_HELLOS[usize::from(r.u8()) % SERVER_HELLOS.len()];
                    h[..h.len().min(SEG_MAX)].to_vec()
                }
                _ => {
                    let n = usize::from(r.u8()) * 4;
                    let mut resp =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
                    resp.resize(resp.len() + n, b'x');
                    resp
                }
            };
            let ep = &mut self.legs[li].ep;
            let seq = match seq_mode {
                0 => ep.snd_nxt,
                2 => r.u32(),
                _ => ep.snd_nxt.wrapping_add(i32::from(r.u16() as i16) as u32),
            };
            if seq_mode == 0 && !flags.contains(TcpFlags::RST) {
                ep.sent_new(&payload, flags.contains(TcpFlags::FIN));
            }
            (seq, payload)
        };
        let ep = &self.legs[li].ep;
        let ack = if raw_ack { r.u32() } else { ep.rcv_nxt };
        let options = match (pk >> 2) & 3 {
            0 | 3 if syn => syn_options(r, now_ms, ep.peer_tsval),
            0 => ack_options(ep, now_ms, 0, r),
            1 => Vec::new(),
            2 => raw_options(r),
            _ => {
                let s = r.u8();
                ack_options(ep, now_ms, s, r)
            }
        };
        self.injected += payload.len();
        let f = build(
            server_mac(*server.ip()),
            BMAC,
            server,
            SocketAddrV4::new(LOCAL, lport),
            seq,
            ack,
            flags,
            window,
            &options,
            &payload,
            corrupt,
        );
        self.inject(1, f);
    }

    /// Raw bytes after an Ethernet header, or raw TCP bytes in a valid
    /// IPv4 packet (checksum fixed unless asked not to).
    fn garbage(&mut self, port: usize, r: &mut In<'_>) {
        let mode = r.u8();
        let n = usize::from(r.u8()) * 2;
        let body = r.bytes(n).to_vec();
        self.injected += body.len();
        let (mac, src, dst) = if port == 0 {
            (CMAC, client_addr(usize::from(mode >> 4)), VIP)
        } else {
            (BMAC, SocketAddrV4::new(SERVERS[0], 80), LOCAL)
        };
        let f = if mode & 1 == 0 {
            let mut f = Vec::with_capacity(14 + body.len());
            f.extend_from_slice(&mac.0);
            f.extend_from_slice(&PEER.0);
            f.extend_from_slice(&if mode & 2 == 0 { [8, 0] } else { [8, 6] });
            f.extend_from_slice(&body);
            f
        } else {
            let mut tcp = body;
            if tcp.len() >= 4 {
                if port == 0 {
                    tcp[..2].copy_from_slice(&src.port().to_be_bytes());
                    let p = VIP_PORTS[usize::from(mode >> 1) % 3];
                    tcp[2..4].copy_from_slice(&p.to_be_bytes());
                } else if let Some(l) = self.legs.get(usize::from(mode >> 1)) {
                    tcp[..2].copy_from_slice(&l.server.port().to_be_bytes());
                    tcp[2..4].copy_from_slice(&l.lport.to_be_bytes());
                }
            }
            if mode & 2 == 0 && tcp.len() >= 20 {
                // A valid checksum over whatever the header says.
                tcp[16..18].fill(0);
                let ph =
                    qsplice_wire::checksum::pseudo_header_v4(*src.ip(), dst, 6, tcp.len() as u16);
                let c = !qsplice_wire::checksum::fold(qsplice_wire::checksum::sum(&tcp, ph));
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
            }
            let from = if port == 0 {
                PEER
            } else {
                server_mac(SERVERS[0])
            };
            let src_ip = if port == 0 { *src.ip() } else { SERVERS[0] };
            frame(from, mac, src_ip, dst, &tcp)
        };
        self.inject(port, f);
    }

    /// The control thread republishes the board (health changes, a reload):
    /// one pool's policy, and each backend's state, weight, connection
    /// limit and the connection count the other lcores report.
    fn board_op(&mut self, r: &mut In<'_>) {
        let b = r.u8();
        let pool = usize::from(b % 3);
        let mut all = pools();
        all[pool].0 = match (b >> 2) % 4 {
            0 => Policy::RoundRobin,
            1 => Policy::WeightedRoundRobin,
            2 => Policy::LeastConnections,
            _ => Policy::Maglev,
        };
        let mut conns = Vec::new();
        for be in all[pool].1.iter_mut() {
            let x = r.u8();
            be.state = match x % 3 {
                0 => BackendState::Up,
                1 => BackendState::Down,
                _ => BackendState::Draining,
            };
            be.weight = u32::from((x >> 2) % 4);
            be.max_conns = u32::from((x >> 4) % 4);
            conns.push(u32::from(x >> 6));
        }
        self.version += 1;
        let v = self.version;
        let snaps = all
            .into_iter()
            .enumerate()
            .map(|(i, (pol, bs))| {
                let c = if i == pool { conns.clone() } else { vec![] };
                Snapshot::build(v, pol, bs, c, MAGLEV_SMALL)
            })
            .collect();
        if tracing() {
            eprintln!("  board v{v}: pool {pool} changed");
        }
        self.shared.board.publish(snaps);
        // The lcore picks it up at its next tick.
        self.advance(1, 1);
    }

    fn advance_op(&mut self, r: &mut In<'_>) {
        let b = r.u8();
        let v = u64::from(r.u8()) + 1;
        let ms = match b & 3 {
            0 => v,
            1 => v * 10,
            2 => v * 100,
            _ => v * 1000,
        };
        self.advance(ms, u64::from(b >> 4) + 1);
    }

    /// No more input: run the clock past every timeout; every table must
    /// be empty again.
    fn finish(&mut self) {
        // Idle 5 s, linger 0.5 s, handshake 4 s, SYN cache 10 s, hello wait
        // 1 s, backend SYN retries < 2 s: 40 s in 0.5 s ticks covers all.
        for _ in 0..80 {
            self.advance(500, 1);
        }
        let lb = self.w.service();
        let c = self.shared.counters.snapshot();
        if tracing() {
            c.for_each(|n, v| {
                if v != 0 {
                    eprintln!("  {n} = {v}");
                }
            });
            for t in self.shared.tls.load().iter() {
                eprintln!("  tls: {t:?}");
            }
        }
        assert_eq!(lb.flows(), 0, "flows left after every timeout");
        assert_eq!(lb.held(), 0, "held segments left after every timeout");
        assert_eq!(c.flows_active, 0, "flows_active after every timeout");
        assert_eq!(
            c.flows_connecting, 0,
            "flows_connecting after every timeout"
        );
        assert_eq!(c.tls_active, 0, "tls_active after every timeout");
        assert_eq!(
            c.syn_cache_active, 0,
            "syn_cache_active after every timeout"
        );
        assert_eq!(c.tls_accepted, c.tls_closed, "every TLS connection closed");
        for (pool, n) in [(0, 3), (1, 2), (2, 3)] {
            for b in 0..n {
                let st = self.shared.backends.get(pool, b);
                assert_eq!(
                    st.active, 0,
                    "backend {pool}/{b} still has active connections"
                );
            }
        }
        assert!(
            self.sessions.events.is_empty(),
            "learning events left unread"
        );
    }
}

/// See the module docs.
pub fn lb_stateful(data: &[u8]) {
    let mut rig = Rig::new();
    let mut r = In { d: data, i: 0 };
    let mut ops = 0;
    while !r.done() && ops < MAX_OPS {
        ops += 1;
        let op = r.u8() % 10;
        if tracing() {
            eprintln!("op {ops}: {op}");
        }
        match op {
            0..=3 => rig.client_op(&mut r),
            4 | 5 => rig.backend_op(&mut r),
            6 => rig.advance_op(&mut r),
            7 => rig.board_op(&mut r),
            8 => rig.garbage(0, &mut r),
            _ => rig.garbage(1, &mut r),
        }
    }
    rig.finish();
}
