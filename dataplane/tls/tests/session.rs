//! `TlsSession` against a real TLS client (rustls' client, in process):
//! handshakes per group and policy, certificates by SNI and signature
//! scheme, resumption across "lcores" (separate sessions and stats sharing
//! one context), flow control, close, and bad input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use qsplice_tls::certgen::{KeyAlg, LabCa};
use qsplice_tls::certs::CertSpec;
use qsplice_tls::session::MAX_PLAINTEXT;
use qsplice_tls::{
    Failure, Group, Phase, Plaintext, PqPolicy, TlsContext, TlsSession, TlsSettings, TlsStats,
};
use qsplice_wire::tls::HelloAssembler;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, Tls12Resumption, WebPkiServerVerifier};
use rustls::crypto::aws_lc_rs::{self, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CipherSuite, ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind,
    RootCertStore, SupportedCipherSuite,
};

/// A test PKI: the lab CA, leaf certificates written as PEM files.
struct Pki {
    dir: PathBuf,
    ca: LabCa,
    n: usize,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("qs-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Pki {
            dir,
            ca: LabCa::new().unwrap(),
            n: 0,
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut r = RootCertStore::empty();
        r.add(self.ca.der().clone()).unwrap();
        r
    }

    /// A leaf for `names`, served for `sni`; returns the spec and its DER.
    fn leaf(
        &mut self,
        alg: KeyAlg,
        names: &[&str],
        sni: &[&str],
    ) -> (CertSpec, CertificateDer<'static>) {
        self.n += 1;
        let leaf = self.ca.leaf(alg, names).unwrap();
        let cert_path = self.dir.join(format!("leaf{}.pem", self.n));
        let key_path = self.dir.join(format!("leaf{}.key", self.n));
        std::fs::write(&cert_path, &leaf.cert_pem).unwrap();
        std::fs::write(&key_path, &leaf.key_pem).unwrap();
        let spec = CertSpec {
            cert: cert_path,
            key: key_path,
            names: sni.iter().map(|s| s.to_string()).collect(),
            ocsp: None,
        };
        (spec, leaf.der)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The backend side: bounded buffers both ways.
#[derive(Default)]
struct Backend {
    /// Decrypted client data.
    got: Vec<u8>,
    room: usize,
    /// Plaintext to send to the client.
    out: Vec<u8>,
    out_pos: usize,
}

impl Plaintext for Backend {
    fn room(&self) -> usize {
        self.room
    }
    fn put(&mut self, d: &[u8]) {
        assert!(d.len() <= self.room, "put beyond room");
        self.got.extend_from_slice(d);
        self.room -= d.len();
    }
    fn pending(&mut self) -> &[u8] {
        &self.out[self.out_pos..]
    }
    fn consume(&mut self, n: usize) {
        self.out_pos += n;
    }
}

/// One server connection as an lcore holds it.
struct Server {
    s: TlsSession,
    scratch: HelloAssembler,
    stats: TlsStats,
    be: Backend,
    /// Plaintext the client read.
    client_got: Vec<u8>,
}

impl Server {
    fn new() -> Server {
        Server {
            s: TlsSession::new(),
            scratch: HelloAssembler::new(),
            stats: TlsStats::default(),
            be: Backend {
                room: usize::MAX,
                ..Backend::default()
            },
            client_got: Vec::new(),
        }
    }
}

fn client_config(
    pki: &Pki,
    groups: &[&'static dyn SupportedKxGroup],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    let provider = CryptoProvider {
        kx_groups: groups.to_vec(),
        ..aws_lc_rs::default_provider()
    };
    ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth()
}

fn tls13() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13]
}

/// Moves bytes both ways until neither side makes progress. `chunk`
/// limits client-to-server writes (segmenting).
fn pump(c: &mut ClientConnection, srv: &mut Server, ctx: &TlsContext, chunk: usize) {
    for _ in 0..100_000 {
        let mut moved = false;
        // client → server
        let mut buf = vec![0u8; chunk.min(srv.s.rx_room())];
        if !buf.is_empty() && c.wants_write() {
            let n = c.write_tls(&mut &mut buf[..]).unwrap();
            if n > 0 {
                assert_eq!(srv.s.receive(&buf[..n]), n);
                moved = true;
            }
        }
        let before = (
            srv.s.outgoing().len(),
            srv.s.rx_pending(),
            srv.be.got.len(),
            srv.be.out_pos,
        );
        srv.s
            .process(ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
        let after = (
            srv.s.outgoing().len(),
            srv.s.rx_pending(),
            srv.be.got.len(),
            srv.be.out_pos,
        );
        moved |= before != after;
        // server → client
        let out = srv.s.outgoing();
        if !out.is_empty() {
            let mut rd = out;
            let n = c.read_tls(&mut rd).unwrap();
            srv.s.consume_outgoing(n);
            moved |= n > 0;
            if let Err(_e) = c.process_new_packets() {
                return;
            }
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(k) = c.reader().read(&mut buf) {
                if k == 0 {
                    break;
                }
                srv.client_got.extend_from_slice(&buf[..k]);
            }
        }
        if !moved {
            return;
        }
    }
    panic!("pump did not settle");
}

fn connect(
    cfg: &Arc<ClientConfig>,
    name: &str,
    srv: &mut Server,
    ctx: &TlsContext,
) -> ClientConnection {
    let mut c = ClientConnection::new(cfg.clone(), ServerName::try_from(name.to_string()).unwrap())
        .unwrap();
    pump(&mut c, srv, ctx, 1 << 20);
    c
}

fn settings(certs: Vec<CertSpec>) -> TlsSettings {
    TlsSettings {
        certs,
        ..TlsSettings::default()
    }
}

#[test]
fn classical_and_hybrid_handshakes_carry_data_both_ways() {
    let mut pki = Pki::new("basic");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    for (groups, want) in [
        (vec![kx_group::X25519], Group::X25519),
        (
            vec![kx_group::X25519MLKEM768, kx_group::X25519],
            Group::X25519MlKem768,
        ),
        (vec![kx_group::SECP256R1MLKEM768], Group::SecP256r1MlKem768),
        (vec![kx_group::SECP384R1], Group::P384),
    ] {
        let cc = Arc::new(client_config(&pki, &groups, &tls13()));
        let mut srv = Server::new();
        let mut c = connect(&cc, "vip.test", &mut srv, &ctx);
        assert!(!c.is_handshaking(), "{want}: client still handshaking");
        assert_eq!(srv.s.phase(), Phase::Established, "{want}");
        let h = srv.s.handshake().unwrap().clone();
        assert_eq!(h.group, Some(want));
        assert_eq!(h.version, rustls::ProtocolVersion::TLSv1_3);
        assert!(!h.resumed && !h.hello_retry);
        assert_eq!(h.sni.as_deref(), Some("vip.test"));
        assert_eq!(h.alpn, None, "client offered no ALPN");
        assert_eq!(srv.stats.groups[want.index()], 1);
        assert_eq!(srv.stats.post_quantum(), u64::from(want.is_post_quantum()));
        // data both ways
        c.writer().write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        srv.be.out = b"HTTP/1.1 200 OK\r\n\r\nhello".to_vec();
        pump(&mut c, &mut srv, &ctx, 1 << 20);
        assert_eq!(srv.be.got, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(srv.client_got, b"HTTP/1.1 200 OK\r\n\r\nhello");
        assert_eq!(srv.stats.bytes_in, 18);
        assert_eq!(srv.stats.bytes_out, 24);
    }
}

#[test]
fn alpn_is_negotiated() {
    let mut pki = Pki::new("alpn");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let mut cfg = client_config(&pki, &[kx_group::X25519MLKEM768], &tls13());
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut srv = Server::new();
    let c = connect(&Arc::new(cfg), "vip.test", &mut srv, &ctx);
    assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(
        srv.s.handshake().unwrap().alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );
}

#[test]
fn require_policy_rejects_classical_and_retries_hybrid() {
    let mut pki = Pki::new("require");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&TlsSettings {
        policy: PqPolicy::Require,
        ..settings(vec![spec])
    })
    .unwrap();
    // classical-only client: handshake_failure alert, counted incompatible
    let cc = Arc::new(client_config(
        &pki,
        &[kx_group::X25519, kx_group::SECP256R1],
        &tls13(),
    ));
    let mut srv = Server::new();
    let mut c = ClientConnection::new(cc, ServerName::try_from("vip.test").unwrap()).unwrap();
    pump(&mut c, &mut srv, &ctx, 1 << 20);
    assert_eq!(srv.s.phase(), Phase::Failed);
    assert_eq!(srv.s.failure(), Some(Failure::Incompatible));
    assert_eq!(srv.stats.failures[Failure::Incompatible.index()], 1);
    let e = c.process_new_packets().unwrap_err();
    assert!(
        matches!(
            e,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
        ),
        "{e:?}"
    );
    // a client that supports the hybrid but leads with a classical share:
    // HelloRetryRequest, then hybrid
    let cc = Arc::new(client_config(
        &pki,
        &[kx_group::X25519, kx_group::X25519MLKEM768],
        &tls13(),
    ));
    let mut srv = Server::new();
    let c = connect(&cc, "vip.test", &mut srv, &ctx);
    assert!(!c.is_handshaking());
    assert_eq!(
        c.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    let h = srv.s.handshake().unwrap();
    assert_eq!(h.group, Some(Group::X25519MlKem768));
    assert!(h.hello_retry);
    assert_eq!(srv.stats.hello_retries, 1);
}

#[test]
fn require_needs_a_pq_group_in_config() {
    let mut pki = Pki::new("reqcfg");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let e = TlsContext::new(&TlsSettings {
        policy: PqPolicy::Require,
        groups: vec![Group::X25519],
        ..settings(vec![spec])
    })
    .unwrap_err();
    assert!(e.to_string().contains("post-quantum"), "{e}");
    let e = TlsContext::new(&TlsSettings::default()).unwrap_err();
    assert_eq!(e.to_string(), "no certificate configured");
}

#[test]
fn certificates_by_sni_and_signature_scheme() {
    let mut pki = Pki::new("sni");
    let (a, a_der) = pki.leaf(KeyAlg::EcdsaP256, &["a.test"], &["a.test"]);
    let (b_pq, b_pq_der) = pki.leaf(KeyAlg::MlDsa65, &["b.test"], &["b.test"]);
    let (b, _) = pki.leaf(KeyAlg::EcdsaP384, &["b.test"], &["b.test"]);
    let (w, w_der) = pki.leaf(KeyAlg::Ed25519, &["x.wild.test"], &["*.wild.test"]);
    let (r, r_der) = pki.leaf(KeyAlg::Rsa2048, &["rsa.test"], &["rsa.test"]);
    let (d, d_der) = pki.leaf(KeyAlg::EcdsaP256, &["default.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![a, b_pq, b, w, r, d])).unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519MLKEM768], &tls13()));
    for (name, want) in [
        ("a.test", &a_der),
        ("b.test", &b_pq_der),
        ("x.wild.test", &w_der),
        ("rsa.test", &r_der),
        ("default.test", &d_der),
    ] {
        let mut srv = Server::new();
        let c = connect(&cc, name, &mut srv, &ctx);
        assert!(!c.is_handshaking(), "{name}");
        assert_eq!(c.peer_certificates().unwrap()[0], *want, "{name}");
    }
}

#[test]
fn bad_key_file_is_reported_with_its_path() {
    let mut pki = Pki::new("badkey");
    let (mut a, _) = pki.leaf(KeyAlg::EcdsaP256, &["a.test"], &[]);
    let (b, _) = pki.leaf(KeyAlg::EcdsaP256, &["b.test"], &[]);
    a.key = b.key.clone();
    let e = TlsContext::new(&settings(vec![a])).unwrap_err().to_string();
    assert!(
        e.contains("leaf2.key") && e.contains("does not match"),
        "{e}"
    );
    let (mut c, _) = pki.leaf(KeyAlg::EcdsaP256, &["c.test"], &[]);
    c.cert = pki.dir.join("missing.pem");
    let e = TlsContext::new(&settings(vec![c])).unwrap_err().to_string();
    assert!(e.contains("missing.pem"), "{e}");
}

/// A second connection resumes with the first one's ticket, on another
/// "lcore" (own session, scratch and counters, shared context).
#[test]
fn tls13_ticket_resumes_on_another_lcore_until_keys_rotate_out() {
    let mut pki = Pki::new("ticket");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&TlsSettings {
        session_cache: 0,
        ..settings(vec![spec])
    })
    .unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519MLKEM768], &tls13()));
    let mut lcore0 = Server::new();
    let c = connect(&cc, "vip.test", &mut lcore0, &ctx);
    assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
    let mut lcore1 = Server::new();
    let c = connect(&cc, "vip.test", &mut lcore1, &ctx);
    assert_eq!(c.handshake_kind(), Some(HandshakeKind::Resumed));
    let h = lcore1.s.handshake().unwrap();
    assert!(h.resumed);
    assert_eq!(
        h.group,
        Some(Group::X25519MlKem768),
        "psk_dhe_ke keeps the hybrid"
    );
    assert_eq!((lcore1.stats.resumed, lcore1.stats.handshakes), (1, 1));
    // one rotation: the newest ticket (issued on lcore1) still resumes
    let keys = ctx.tickets.as_ref().unwrap();
    keys.rotate();
    let mut s = Server::new();
    assert_eq!(
        connect(&cc, "vip.test", &mut s, &ctx).handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
    // two rotations: every ticket the client holds is dead
    keys.rotate();
    keys.rotate();
    let mut s = Server::new();
    assert_eq!(
        connect(&cc, "vip.test", &mut s, &ctx).handshake_kind(),
        Some(HandshakeKind::Full)
    );
    let (issued, accepted, rejected) = keys.counts();
    assert!(
        issued >= 4 && accepted >= 2 && rejected >= 1,
        "{issued} {accepted} {rejected}"
    );
}

#[test]
fn tls12_resumes_by_session_id_from_the_shared_cache() {
    let mut pki = Pki::new("sessid");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&TlsSettings {
        tickets: false,
        ..settings(vec![spec])
    })
    .unwrap();
    let mut cfg = client_config(&pki, &[kx_group::X25519], &[&rustls::version::TLS12]);
    cfg.resumption =
        Resumption::in_memory_sessions(16).tls12_resumption(Tls12Resumption::SessionIdOnly);
    let cc = Arc::new(cfg);
    let mut s0 = Server::new();
    let c = connect(&cc, "vip.test", &mut s0, &ctx);
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(s0.stats.tls12, 1);
    let mut s1 = Server::new();
    let c = connect(&cc, "vip.test", &mut s1, &ctx);
    assert_eq!(c.handshake_kind(), Some(HandshakeKind::Resumed));
    let h = s1.s.handshake().unwrap();
    assert!(h.resumed);
    assert_eq!(h.group, None, "TLS 1.2 resumption has no key exchange");
    let n = ctx.cache.as_ref().unwrap().counts();
    assert_eq!((n.stored, n.hits), (1, 1));
}

#[test]
fn tls12_ticket_resumes() {
    let mut pki = Pki::new("t12");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let cc = Arc::new(client_config(
        &pki,
        &[kx_group::X25519],
        &[&rustls::version::TLS12],
    ));
    let mut s0 = Server::new();
    connect(&cc, "vip.test", &mut s0, &ctx);
    let mut s1 = Server::new();
    let c = connect(&cc, "vip.test", &mut s1, &ctx);
    assert_eq!(c.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(
        ctx.tickets.as_ref().unwrap().counts().1 >= 1,
        "a ticket was accepted"
    );
}

#[test]
fn no_resumption_when_both_are_off() {
    let mut pki = Pki::new("nores");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&TlsSettings {
        tickets: false,
        session_cache: 0,
        ..settings(vec![spec])
    })
    .unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519], &tls13()));
    for _ in 0..2 {
        let mut s = Server::new();
        let c = connect(&cc, "vip.test", &mut s, &ctx);
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
    }
    let mut cfg12 = client_config(&pki, &[kx_group::X25519], &[&rustls::version::TLS12]);
    cfg12.resumption = Resumption::in_memory_sessions(4);
    let cc12 = Arc::new(cfg12);
    for _ in 0..2 {
        let mut s = Server::new();
        let c = connect(&cc12, "vip.test", &mut s, &ctx);
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
    }
}

#[test]
fn tls12_can_be_disabled() {
    let mut pki = Pki::new("no12");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&TlsSettings {
        tls12: false,
        ..settings(vec![spec])
    })
    .unwrap();
    let cc = Arc::new(client_config(
        &pki,
        &[kx_group::X25519],
        &[&rustls::version::TLS12],
    ));
    let mut s = Server::new();
    let mut c = ClientConnection::new(cc, ServerName::try_from("vip.test").unwrap()).unwrap();
    pump(&mut c, &mut s, &ctx, 1 << 20);
    assert_eq!(s.s.failure(), Some(Failure::Incompatible));
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Megabytes both ways with a backend that takes little at a time: the
/// session decrypts only what fits, nothing is lost or reordered.
#[test]
fn bulk_both_ways_with_backpressure() {
    let mut pki = Pki::new("bulk");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519MLKEM768], &tls13()));
    let mut srv = Server::new();
    let mut c = connect(&cc, "vip.test", &mut srv, &ctx);
    let up = pseudo_random(3 << 20, 7);
    let down = pseudo_random(2 << 20, 9);
    srv.be.out = down.clone();
    let mut sent = 0;
    for _ in 0..100_000 {
        if sent < up.len() {
            sent += c
                .writer()
                .write(&up[sent..(sent + 40_000).min(up.len())])
                .unwrap();
        }
        srv.be.room = MAX_PLAINTEXT + 1000; // the backend drains a bit per round
        pump(&mut c, &mut srv, &ctx, 9000);
        if sent == up.len() && srv.be.got.len() == up.len() && srv.client_got.len() == down.len() {
            break;
        }
    }
    assert!(
        srv.be.got == up,
        "upload differs ({} of {} bytes)",
        srv.be.got.len(),
        up.len()
    );
    assert!(
        srv.client_got == down,
        "download differs ({} of {} bytes)",
        srv.client_got.len(),
        down.len()
    );
    assert_eq!(srv.stats.bytes_in, up.len() as u64);
    assert_eq!(srv.stats.bytes_out, down.len() as u64);
    assert!(srv.s.outgoing().is_empty());
}

#[test]
fn close_notify_both_ways() {
    let mut pki = Pki::new("close");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519], &tls13()));
    let mut srv = Server::new();
    let mut c = connect(&cc, "vip.test", &mut srv, &ctx);
    // The client closes first (an HTTP client done with its requests)…
    c.send_close_notify();
    pump(&mut c, &mut srv, &ctx, 1 << 20);
    assert!(srv.s.peer_closed());
    assert_eq!(srv.stats.close_notify, 1);
    // … the backend's last bytes still go out, then our close_notify.
    srv.be.out = b"bye".to_vec();
    srv.s.close();
    pump(&mut c, &mut srv, &ctx, 1 << 20);
    assert!(srv.s.close_sent());
    assert_eq!(srv.client_got, b"bye");
    let mut buf = [0u8; 8];
    assert_eq!(
        c.reader().read(&mut buf).unwrap(),
        0,
        "clean EOF after close_notify"
    );
    assert_eq!(srv.s.failure(), None);
}

/// Found by the `lb_stateful` fuzz target: after our close_notify, client
/// bytes that rustls cannot deframe or decrypt made it queue a fatal alert
/// after the close_notify, which its debug assertion forbids (a remote
/// abort of a debug build). They are dropped now, whatever they are.
#[test]
fn bytes_after_our_close_notify_are_dropped_not_processed() {
    let mut pki = Pki::new("close-garbage");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    for versions in [tls13(), vec![&rustls::version::TLS12]] {
        let cc = Arc::new(client_config(&pki, &[kx_group::X25519], &versions));
        let mut srv = Server::new();
        let mut c = connect(&cc, "vip.test", &mut srv, &ctx);
        srv.s.close();
        pump(&mut c, &mut srv, &ctx, 1 << 20);
        assert!(srv.s.close_sent());
        for junk in [
            &b"x"[..],
            &[0x17, 0x03, 0x03, 0x00, 0x13, 1, 2, 3][..],
            &[0x15; 40][..],
        ] {
            srv.s.receive(junk);
            let p = srv
                .s
                .process(&ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
            assert_eq!(p, Default::default());
            assert_eq!(srv.s.rx_pending(), 0, "dropped");
            assert_eq!(srv.s.failure(), None);
        }
    }
}

#[test]
fn plain_http_to_the_tls_port_is_a_malformed_hello_with_an_alert() {
    let mut pki = Pki::new("http");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let mut srv = Server::new();
    srv.s.receive(b"GET / HTTP/1.1\r\nHost: vip.test\r\n\r\n");
    let p = srv
        .s
        .process(&ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
    assert!(p.failed);
    assert_eq!(srv.s.failure(), Some(Failure::MalformedHello));
    assert_eq!(srv.stats.failures[Failure::MalformedHello.index()], 1);
    let out = srv.s.outgoing();
    assert!(
        out.len() >= 7 && out[0] == 0x15,
        "an alert record: {out:02x?}"
    );
    // a later process call changes nothing
    let p = srv
        .s
        .process(&ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
    assert_eq!(p, Default::default());
}

#[test]
fn truncated_hello_waits_then_times_out() {
    let mut pki = Pki::new("trunc");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519MLKEM768], &tls13()));
    let mut c = ClientConnection::new(cc, ServerName::try_from("vip.test").unwrap()).unwrap();
    let mut hello = Vec::new();
    c.write_tls(&mut hello).unwrap();
    assert!(hello.len() > 1200, "hybrid share: {} bytes", hello.len());
    let mut srv = Server::new();
    srv.s.receive(&hello[..1000]);
    let p = srv
        .s
        .process(&ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
    assert_eq!(p, Default::default(), "waits for the rest");
    assert!(srv.s.is_handshaking());
    assert!(srv.s.outgoing().is_empty());
    // the caller's timer fires
    srv.s.abort(Failure::HandshakeTimeout, &mut srv.stats);
    assert_eq!(srv.s.phase(), Phase::Failed);
    assert_eq!(srv.stats.failures[Failure::HandshakeTimeout.index()], 1);
    assert_eq!(ctx.handshake_timeout, Duration::from_secs(10));
}

#[test]
fn garbage_after_the_handshake_is_a_bad_record() {
    let mut pki = Pki::new("garbage");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let cc = Arc::new(client_config(&pki, &[kx_group::X25519], &tls13()));
    let mut srv = Server::new();
    let _c = connect(&cc, "vip.test", &mut srv, &ctx);
    assert_eq!(srv.s.phase(), Phase::Established);
    srv.s.consume_outgoing(usize::MAX);
    let mut rec = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    rec.extend(pseudo_random(0x40, 3));
    srv.s.receive(&rec);
    let p = srv
        .s
        .process(&ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
    assert!(p.failed);
    assert_eq!(srv.s.failure(), Some(Failure::BadRecord));
    assert!(srv.be.got.is_empty());
    assert!(!srv.s.outgoing().is_empty(), "bad_record_mac alert");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Any segmentation of the client's bytes (hybrid hello over several
    /// segments included) gives the same handshake and data.
    #[test]
    fn any_segmentation_works(chunk in 1usize..3000, hybrid in any::<bool>()) {
        let mut pki = Pki::new(&format!("seg{chunk}"));
        let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
        let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
        let g = if hybrid { kx_group::X25519MLKEM768 } else { kx_group::X25519 };
        let cc = Arc::new(client_config(&pki, &[g], &tls13()));
        let mut srv = Server::new();
        let mut c = ClientConnection::new(cc, ServerName::try_from("vip.test").unwrap()).unwrap();
        c.writer().write_all(b"early app data after the handshake").unwrap();
        pump(&mut c, &mut srv, &ctx, chunk);
        prop_assert_eq!(srv.s.phase(), Phase::Established);
        prop_assert_eq!(&srv.be.got[..], &b"early app data after the handshake"[..]);
    }
}

fn first_flight(pki: &Pki, groups: &[&'static dyn SupportedKxGroup]) -> Vec<u8> {
    let cc = Arc::new(client_config(pki, groups, &tls13()));
    let mut c = ClientConnection::new(cc, ServerName::try_from("vip.test").unwrap()).unwrap();
    let mut v = Vec::new();
    c.write_tls(&mut v).unwrap();
    v
}

/// `prefer`: a hello carrying a hybrid key share gets the configuration
/// with that group alone (so the hybrid wins whatever the client's order);
/// a classical-only hello gets the general one.
#[test]
fn prefer_picks_the_config_for_the_hybrid_share() {
    let mut pki = Pki::new("prefer");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let mut asm = HelloAssembler::new();
    for (groups, pq) in [
        (vec![kx_group::X25519MLKEM768, kx_group::X25519], true),
        (vec![kx_group::SECP256R1MLKEM768], true),
        (vec![kx_group::X25519, kx_group::SECP256R1], false),
    ] {
        asm.reset();
        let flight = first_flight(&pki, &groups);
        asm.push(&flight).unwrap().expect("whole hello");
        let hello = qsplice_wire::tls::ClientHello::parse(asm.message().unwrap()).unwrap();
        let cfg = ctx.config_for(Some(&hello));
        assert_eq!(
            !Arc::ptr_eq(cfg, ctx.general()),
            pq,
            "{:?}",
            hello.key_share_groups
        );
        if pq {
            assert_eq!(cfg.crypto_provider().kx_groups.len(), 1);
        }
    }
    assert!(Arc::ptr_eq(ctx.config_for(None), ctx.general()));
}

// ---- cipher suite order (prefer_server_ciphers) ----

/// A client offering exactly `suites`, in that order.
fn client_with_suites(
    pki: &Pki,
    groups: &[&'static dyn SupportedKxGroup],
    suites: &[SupportedCipherSuite],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let provider = CryptoProvider {
        kx_groups: groups.to_vec(),
        cipher_suites: suites.to_vec(),
        ..aws_lc_rs::default_provider()
    };
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(pki.roots())
            .with_no_client_auth(),
    )
}

/// The suite a fresh connection negotiates, as both ends see it.
fn negotiated(cc: &Arc<ClientConfig>, ctx: &TlsContext) -> (CipherSuite, Option<Group>) {
    let mut srv = Server::new();
    let c = connect(cc, "vip.test", &mut srv, ctx);
    assert_eq!(srv.s.phase(), Phase::Established);
    let h = srv.s.handshake().unwrap().clone();
    assert_eq!(c.negotiated_cipher_suite().unwrap().suite(), h.suite);
    (h.suite, h.group)
}

#[test]
fn server_suite_order_wins_when_preferred_client_order_otherwise() {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let mut pki = Pki::new("suites");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let server_order = |prefer: bool| {
        TlsContext::new(&TlsSettings {
            cipher_suites: [
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ]
            .map(String::from)
            .to_vec(),
            prefer_server_ciphers: prefer,
            ..settings(vec![spec.clone()])
        })
        .unwrap()
    };
    let (on, off) = (server_order(true), server_order(false));
    // The client lists the server's suites the other way round.
    let c13 = |groups: &[&'static dyn SupportedKxGroup]| {
        client_with_suites(
            &pki,
            groups,
            &[
                cs::TLS13_AES_128_GCM_SHA256,
                cs::TLS13_AES_256_GCM_SHA384,
                cs::TLS13_CHACHA20_POLY1305_SHA256,
            ],
            &tls13(),
        )
    };
    let cc = c13(&[kx_group::X25519]);
    assert_eq!(
        negotiated(&cc, &on),
        (
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            Some(Group::X25519)
        )
    );
    assert_eq!(
        negotiated(&cc, &off),
        (CipherSuite::TLS13_AES_128_GCM_SHA256, Some(Group::X25519))
    );
    // The PQ `prefer` logic picks the group (here through the config that
    // holds the hybrid group alone), the suite order the suite.
    let hybrid_first = c13(&[kx_group::X25519MLKEM768, kx_group::X25519]);
    assert_eq!(
        negotiated(&hybrid_first, &on),
        (
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            Some(Group::X25519MlKem768)
        )
    );
    assert_eq!(
        negotiated(&hybrid_first, &off),
        (
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            Some(Group::X25519MlKem768)
        )
    );
    // TLS 1.2 too.
    let cc12 = client_with_suites(
        &pki,
        &[kx_group::X25519],
        &[
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        &[&rustls::version::TLS12],
    );
    assert_eq!(
        negotiated(&cc12, &on).0,
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    );
    assert_eq!(
        negotiated(&cc12, &off).0,
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
}

#[test]
fn prefer_server_ciphers_is_the_default() {
    assert!(TlsSettings::default().prefer_server_ciphers);
    let mut pki = Pki::new("suitedefault");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    // rustls' default order starts with AES-256-GCM.
    let cc = client_with_suites(
        &pki,
        &[kx_group::X25519],
        &[
            rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256,
            rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ],
        &tls13(),
    );
    assert_eq!(
        negotiated(&cc, &ctx).0,
        CipherSuite::TLS13_AES_256_GCM_SHA384
    );
}

#[test]
fn suite_lists_without_tls13_or_with_unknown_names_are_refused() {
    let mut pki = Pki::new("suitebad");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let with = |names: &[&str]| {
        TlsContext::new(&TlsSettings {
            cipher_suites: names.iter().map(|s| s.to_string()).collect(),
            ..settings(vec![spec.clone()])
        })
        .unwrap_err()
        .to_string()
    };
    let e = with(&["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
    assert!(e.contains("TLS13_"), "{e}");
    let e = with(&["TLS13_AES_256_GCM_SHA384", "TLS_NULL_WITH_NULL_NULL"]);
    assert!(
        e.contains("unknown cipher suite \"TLS_NULL_WITH_NULL_NULL\""),
        "{e}"
    );
}

// ---- OCSP stapling ----

/// The OCSP response a client was shown (`None`: no handshake got that far).
type Recorded = Arc<Mutex<Option<Vec<u8>>>>;

/// The lab CA's verifier, recording the stapled OCSP response it is shown.
#[derive(Debug)]
struct OcspRecorder {
    inner: Arc<WebPkiServerVerifier>,
    got: Recorded,
}

impl ServerCertVerifier for OcspRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.got.lock().unwrap() = Some(ocsp_response.to_vec());
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client (asking for OCSP, as rustls' client always does) whose
/// verifier records what the server stapled.
fn ocsp_client(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Arc<ClientConfig>, Recorded) {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![kx_group::X25519MLKEM768, kx_group::X25519],
        ..aws_lc_rs::default_provider()
    });
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(pki.roots()), provider.clone())
            .build()
            .unwrap();
    let got = Arc::new(Mutex::new(None));
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(OcspRecorder {
            inner,
            got: got.clone(),
        }))
        .with_no_client_auth();
    (Arc::new(cfg), got)
}

#[test]
fn the_ocsp_file_is_stapled_byte_for_byte() {
    let mut pki = Pki::new("ocsp");
    let (mut stapled, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &["vip.test"]);
    let (plain, _) = pki.leaf(KeyAlg::EcdsaP256, &["other.test"], &["other.test"]);
    // Any bytes: rustls staples the response without parsing it.
    let response = pseudo_random(1500, 42);
    let path = pki.dir.join("vip.ocsp.der");
    std::fs::write(&path, &response).unwrap();
    stapled.ocsp = Some(path);
    let ctx = TlsContext::new(&settings(vec![stapled, plain])).unwrap();
    for versions in [tls13(), vec![&rustls::version::TLS12]] {
        let (cc, got) = ocsp_client(&pki, &versions);
        let mut srv = Server::new();
        let c = connect(&cc, "vip.test", &mut srv, &ctx);
        assert!(!c.is_handshaking(), "{versions:?}");
        assert_eq!(srv.s.phase(), Phase::Established, "{versions:?}");
        assert_eq!(
            got.lock().unwrap().as_deref(),
            Some(&response[..]),
            "{versions:?}"
        );
        // A certificate without a response staples nothing.
        let mut srv = Server::new();
        let c = connect(&cc, "other.test", &mut srv, &ctx);
        assert!(!c.is_handshaking(), "{versions:?}");
        assert_eq!(
            got.lock().unwrap().as_deref(),
            Some(&[][..]),
            "{versions:?}"
        );
    }
}

#[test]
fn bad_ocsp_files_are_reported_with_their_path() {
    let mut pki = Pki::new("ocspbad");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let big = pki.dir.join("big.der");
    std::fs::write(&big, vec![1u8; 64 * 1024 + 1]).unwrap();
    let empty = pki.dir.join("empty.der");
    std::fs::write(&empty, []).unwrap();
    for (file, why) in [
        ("missing.der", "cannot read the OCSP response"),
        ("empty.der", "empty"),
        ("big.der", "at most 65536 bytes"),
    ] {
        let e = TlsContext::new(&settings(vec![CertSpec {
            ocsp: Some(pki.dir.join(file)),
            ..spec.clone()
        }]))
        .unwrap_err()
        .to_string();
        assert!(e.contains(file) && e.contains(why), "{file}: {e}");
    }
    // exactly the limit is fine
    std::fs::write(&big, vec![1u8; 64 * 1024]).unwrap();
    TlsContext::new(&settings(vec![CertSpec {
        ocsp: Some(big),
        ..spec
    }]))
    .unwrap();
}

/// Moves TLS bytes between a client `TlsSession` and a server one until
/// neither makes progress.
fn pump_sessions(
    c: &mut TlsSession,
    cbe: &mut Backend,
    cstats: &mut TlsStats,
    srv: &mut Server,
    ctx: &TlsContext,
) {
    for _ in 0..10_000 {
        let before = (
            c.outgoing().len(),
            srv.s.outgoing().len(),
            cbe.got.len(),
            srv.be.got.len(),
            cbe.out_pos,
            srv.be.out_pos,
        );
        c.process_client(cbe, cstats);
        let n = srv.s.receive(c.outgoing());
        c.consume_outgoing(n);
        srv.s
            .process(ctx, &mut srv.scratch, &mut srv.be, &mut srv.stats);
        let n = c.receive(srv.s.outgoing());
        srv.s.consume_outgoing(n);
        c.process_client(cbe, cstats);
        let after = (
            c.outgoing().len(),
            srv.s.outgoing().len(),
            cbe.got.len(),
            srv.be.got.len(),
            cbe.out_pos,
            srv.be.out_pos,
        );
        if before == after && c.outgoing().is_empty() && srv.s.outgoing().is_empty() {
            return;
        }
    }
    panic!("sessions did not settle");
}

#[test]
fn a_client_session_talks_to_a_server_session_both_sans_io() {
    // The load generator's side of TlsSession against the terminating
    // side: TLS 1.3 with the hybrid group and TLS 1.2, data both ways,
    // then a resumed handshake from the client's session store.
    let mut pki = Pki::new("client");
    let (spec, _) = pki.leaf(KeyAlg::EcdsaP256, &["vip.test"], &[]);
    let ctx = TlsContext::new(&settings(vec![spec])).unwrap();
    let cases: [(
        &'static dyn SupportedKxGroup,
        &'static rustls::SupportedProtocolVersion,
        Group,
    ); 2] = [
        (
            kx_group::X25519MLKEM768,
            &rustls::version::TLS13,
            Group::X25519MlKem768,
        ),
        (kx_group::SECP256R1, &rustls::version::TLS12, Group::P256),
    ];
    for (group, version, want) in cases {
        let cfg = Arc::new(client_config(&pki, &[group], &[version]));
        for round in 0..2 {
            let mut c =
                TlsSession::client(cfg.clone(), ServerName::try_from("vip.test").unwrap()).unwrap();
            let mut cstats = TlsStats::default();
            let request = b"GET / HTTP/1.1\r\nHost: vip.test\r\n\r\n".to_vec();
            let mut cbe = Backend {
                room: usize::MAX,
                out: request.clone(),
                ..Backend::default()
            };
            let mut srv = Server::new();
            srv.be.out = vec![b'r'; 40_000];
            pump_sessions(&mut c, &mut cbe, &mut cstats, &mut srv, &ctx);
            assert_eq!(c.phase(), Phase::Established, "{version:?} round {round}");
            let info = c.handshake().expect("client handshake info").clone();
            // A resumed TLS 1.2 handshake exchanges no key.
            if !(round == 1 && version == &rustls::version::TLS12) {
                assert_eq!(info.group, Some(want), "{version:?} round {round}");
            }
            assert_eq!(
                info.resumed,
                round == 1,
                "{version:?} round {round}: {info:?}"
            );
            assert_eq!(srv.be.got, request, "the server read the request");
            assert_eq!(cbe.got, vec![b'r'; 40_000], "the client read the response");
            assert_eq!(cstats.bytes_out, request.len() as u64);
            // close_notify both ways.
            c.close();
            srv.s.close();
            pump_sessions(&mut c, &mut cbe, &mut cstats, &mut srv, &ctx);
            assert!(c.close_sent() && c.peer_closed(), "{version:?}");
        }
    }
}
