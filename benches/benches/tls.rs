//! Server-side TLS cost on one core, in process: `qsplice_tls::TlsSession`
//! (rustls 0.23 unbuffered + aws-lc-rs) against rustls' client. Only the
//! server's calls are timed (`iter_custom`); the client's work and the
//! setup are not.
//!
//! - `tls_handshake/full/*`: full handshakes per group and certificate;
//!   elements/s = handshakes/s per core;
//! - `tls_handshake/resume/*`: TLS 1.3 ticket resumption (psk_dhe_ke with
//!   the hybrid group) and TLS 1.2 session-ID resumption;
//! - `tls_bulk/*`: application data, 16 KiB records; bytes/s per core;
//! - `tls_handshake/client/*`: the other side — `qsplice loadgen`'s client
//!   session (`TlsSession::client` over rustls' unbuffered client)
//!   against the terminating server; only the client's calls are timed,
//!   so the ratio to `full/*` says whether one loadgen core can saturate
//!   one server core with full handshakes.
//!
//! `cargo bench -p qsplice-benches --bench tls`

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qsplice_tls::certgen::{KeyAlg, LabCa};
use qsplice_tls::certs::CertSpec;
use qsplice_tls::{Plaintext, TlsContext, TlsSession, TlsSettings, TlsStats};
use qsplice_wire::tls::HelloAssembler;
use rustls::client::{Resumption, Tls12Resumption};
use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, SupportedCipherSuite};

struct Sink {
    room: usize,
    out: Vec<u8>,
    pos: usize,
}

impl Plaintext for Sink {
    fn room(&self) -> usize {
        self.room
    }
    fn put(&mut self, d: &[u8]) {
        std::hint::black_box(d);
    }
    fn pending(&mut self) -> &[u8] {
        &self.out[self.pos..]
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

struct Server {
    s: TlsSession,
    scratch: HelloAssembler,
    stats: TlsStats,
    sink: Sink,
}

impl Server {
    fn new() -> Server {
        Server {
            s: TlsSession::new(),
            scratch: HelloAssembler::new(),
            stats: TlsStats::default(),
            sink: Sink {
                room: usize::MAX,
                out: Vec::new(),
                pos: 0,
            },
        }
    }

    /// Feeds `data`, runs the session; returns the server time.
    fn step(&mut self, ctx: &TlsContext, data: &[u8]) -> Duration {
        let t = Instant::now();
        let mut off = 0;
        loop {
            off += self.s.receive(&data[off..]);
            self.s
                .process(ctx, &mut self.scratch, &mut self.sink, &mut self.stats);
            if off == data.len() || self.s.rx_room() == 0 && self.s.rx_pending() == 0 {
                break;
            }
        }
        t.elapsed()
    }
}

/// A full (or resumed) handshake; returns the server's CPU time.
fn handshake(ctx: &TlsContext, cc: &Arc<ClientConfig>, srv: &mut Server) -> Duration {
    let mut c = ClientConnection::new(cc.clone(), ServerName::try_from("vip.test").unwrap())
        .expect("client");
    handshake_with(ctx, &mut c, srv)
}

/// A full handshake driven by the load generator's client session;
/// returns the client's CPU time.
fn client_handshake(ctx: &TlsContext, cfg: &Arc<ClientConfig>, srv: &mut Server) -> Duration {
    let mut c = TlsSession::client(cfg.clone(), ServerName::try_from("vip.test").unwrap())
        .expect("client session");
    let mut cs = TlsStats::default();
    let mut sink = Sink {
        room: usize::MAX,
        out: Vec::new(),
        pos: 0,
    };
    let mut took = Duration::ZERO;
    for _ in 0..16 {
        let t = Instant::now();
        c.process_client(&mut sink, &mut cs);
        took += t.elapsed();
        let out = c.outgoing().to_vec();
        c.consume_outgoing(out.len());
        srv.step(ctx, &out);
        let back = srv.s.outgoing().to_vec();
        srv.s.consume_outgoing(back.len());
        let t = Instant::now();
        c.receive(&back);
        c.process_client(&mut sink, &mut cs);
        took += t.elapsed();
        if c.phase() == qsplice_tls::Phase::Established && c.outgoing().is_empty() {
            assert_eq!(cs.handshakes, 1);
            return took;
        }
    }
    panic!("client handshake did not finish");
}

struct Lab {
    _dir: TempDir,
    ca: LabCa,
    ecdsa: CertSpec,
    mldsa: CertSpec,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lab() -> Lab {
    let dir = std::env::temp_dir().join(format!("qs-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = LabCa::new().unwrap();
    let spec = |alg: KeyAlg, n: &str| {
        let l = ca.leaf(alg, &["vip.test"]).unwrap();
        let (c, k) = (dir.join(format!("{n}.pem")), dir.join(format!("{n}.key")));
        std::fs::write(&c, l.cert_pem).unwrap();
        std::fs::write(&k, l.key_pem).unwrap();
        CertSpec {
            cert: c,
            key: k,
            names: vec![],
            ocsp: None,
        }
    };
    let ecdsa = spec(KeyAlg::EcdsaP256, "ecdsa");
    let mldsa = spec(KeyAlg::MlDsa65, "mldsa");
    Lab {
        _dir: TempDir(dir),
        ca,
        ecdsa,
        mldsa,
    }
}

fn client(
    lab: &Lab,
    groups: &[&'static dyn SupportedKxGroup],
    suites: &[SupportedCipherSuite],
    tls12: bool,
    resume: bool,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(lab.ca.der().clone()).unwrap();
    let provider = CryptoProvider {
        kx_groups: groups.to_vec(),
        cipher_suites: if suites.is_empty() {
            aws_lc_rs::DEFAULT_CIPHER_SUITES.to_vec()
        } else {
            suites.to_vec()
        },
        ..aws_lc_rs::default_provider()
    };
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = if resume {
        Resumption::in_memory_sessions(64).tls12_resumption(Tls12Resumption::SessionIdOnly)
    } else {
        Resumption::disabled()
    };
    Arc::new(cfg)
}

fn bench_handshakes(c: &mut Criterion) {
    let lab = lab();
    let mut g = c.benchmark_group("tls_handshake");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    let full = |cert: &CertSpec| {
        TlsContext::new(&TlsSettings {
            certs: vec![cert.clone()],
            tickets: false,
            session_cache: 0,
            ..TlsSettings::default()
        })
        .unwrap()
    };
    let cases: [(&str, &CertSpec, &'static dyn SupportedKxGroup); 4] = [
        ("full/X25519+ECDSA-P256", &lab.ecdsa, kx_group::X25519),
        (
            "full/X25519MLKEM768+ECDSA-P256",
            &lab.ecdsa,
            kx_group::X25519MLKEM768,
        ),
        (
            "full/X25519MLKEM768+ML-DSA-65",
            &lab.mldsa,
            kx_group::X25519MLKEM768,
        ),
        (
            "full/SecP256r1MLKEM768+ECDSA-P256",
            &lab.ecdsa,
            kx_group::SECP256R1MLKEM768,
        ),
    ];
    for (name, cert, group) in cases {
        let ctx = full(cert);
        let cc = client(&lab, &[group], &[], false, false);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| handshake(&ctx, &cc, &mut Server::new()))
                    .sum()
            })
        });
    }
    // The load generator's client session against the server above (the
    // chain verified against the CA, or not verified); the client's calls
    // timed.
    for (name, ca_pem) in [
        (
            "client/X25519MLKEM768+ECDSA-P256 (loadgen, CA verified)",
            Some(lab.ca.cert_pem()),
        ),
        (
            "client/X25519MLKEM768+ECDSA-P256 (loadgen, no verification)",
            None,
        ),
    ] {
        let ctx = full(&lab.ecdsa);
        let cfg = qsplice_tls::client::client_config(&qsplice_tls::client::ClientSettings {
            groups: vec![qsplice_tls::Group::X25519MlKem768],
            tls13: true,
            tls12: false,
            ca_pem,
            resumption: false,
        })
        .unwrap();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| client_handshake(&ctx, &cfg, &mut Server::new()))
                    .sum()
            })
        });
    }
    // Baseline: rustls' own buffered ServerConnection on the same config
    // (what qsplice's driver adds on top shows as the difference).
    {
        let ctx = full(&lab.ecdsa);
        let cc = client(&lab, &[kx_group::X25519MLKEM768], &[], false, false);
        g.bench_function(
            "full/X25519MLKEM768+ECDSA-P256 (rustls buffered, baseline)",
            |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| buffered_handshake(ctx.general(), &cc))
                        .sum()
                })
            },
        );
    }
    // resumption: TLS 1.3 ticket (hybrid psk_dhe_ke), TLS 1.2 session ID
    let ctx13 = TlsContext::new(&TlsSettings {
        certs: vec![lab.ecdsa.clone()],
        ..TlsSettings::default()
    })
    .unwrap();
    let ctx12 = TlsContext::new(&TlsSettings {
        certs: vec![lab.ecdsa.clone()],
        tickets: false,
        ..TlsSettings::default()
    })
    .unwrap();
    for (name, ctx, cc) in [
        (
            "resume/TLS1.3-ticket-X25519MLKEM768",
            &ctx13,
            client(&lab, &[kx_group::X25519MLKEM768], &[], false, true),
        ),
        (
            "resume/TLS1.2-session-id",
            &ctx12,
            client(&lab, &[kx_group::X25519], &[], true, true),
        ),
    ] {
        handshake(ctx, &cc, &mut Server::new()); // prime the client's cache
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let mut s = Server::new();
                        let t = handshake(ctx, &cc, &mut s);
                        assert_eq!(s.stats.resumed, 1, "{name}: resumed");
                        t
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

const RECORD: usize = 16 * 1024;
const CHUNK: usize = 64 * RECORD;

fn bench_bulk(c: &mut Criterion) {
    let lab = lab();
    let ctx = TlsContext::new(&TlsSettings {
        certs: vec![lab.ecdsa.clone()],
        ..TlsSettings::default()
    })
    .unwrap();
    let mut g = c.benchmark_group("tls_bulk");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    for (name, suite) in [
        ("AES-256-GCM", cipher_suite::TLS13_AES_256_GCM_SHA384),
        (
            "CHACHA20-POLY1305",
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ] {
        let cc = client(&lab, &[kx_group::X25519], &[suite], false, false);
        // encrypt: backend plaintext → records to the client
        let mut srv = Server::new();
        let mut cl =
            ClientConnection::new(cc.clone(), ServerName::try_from("vip.test").unwrap()).unwrap();
        let _ = handshake_with(&ctx, &mut cl, &mut srv);
        srv.sink.out = vec![0x5a; CHUNK];
        g.bench_function(format!("encrypt/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    srv.sink.pos = 0;
                    while srv.sink.pos < CHUNK {
                        let t = Instant::now();
                        srv.s
                            .process(&ctx, &mut srv.scratch, &mut srv.sink, &mut srv.stats);
                        spent += t.elapsed();
                        let n = srv.s.outgoing().len();
                        srv.s.consume_outgoing(n);
                    }
                }
                spent
            })
        });
        // decrypt: records from the client → backend plaintext
        let mut srv = Server::new();
        let mut cl =
            ClientConnection::new(cc.clone(), ServerName::try_from("vip.test").unwrap()).unwrap();
        let _ = handshake_with(&ctx, &mut cl, &mut srv);
        cl.set_buffer_limit(None);
        let data = vec![0xa5; CHUNK];
        g.bench_function(format!("decrypt/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut wire = Vec::with_capacity(CHUNK + CHUNK / 512);
                for _ in 0..iters {
                    wire.clear();
                    cl.writer().write_all(&data).unwrap();
                    while cl.wants_write() {
                        cl.write_tls(&mut wire).unwrap();
                    }
                    spent += srv.step(&ctx, &wire);
                }
                spent
            })
        });
    }
    g.finish();
}

fn handshake_with(ctx: &TlsContext, c: &mut ClientConnection, srv: &mut Server) -> Duration {
    let mut spent = Duration::ZERO;
    let mut buf = Vec::new();
    for _ in 0..16 {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            spent += srv.step(ctx, &buf);
        }
        let mut out = srv.s.outgoing();
        let n = out.len();
        while !out.is_empty() {
            c.read_tls(&mut out).unwrap();
            c.process_new_packets().expect("client accepts the server");
        }
        srv.s.consume_outgoing(n);
        if !c.is_handshaking() && !srv.s.is_handshaking() && !c.wants_write() {
            return spent;
        }
    }
    panic!("handshake did not finish");
}

fn buffered_handshake(sc: &Arc<rustls::ServerConfig>, cc: &Arc<ClientConfig>) -> Duration {
    let mut c = ClientConnection::new(cc.clone(), ServerName::try_from("vip.test").unwrap())
        .expect("client");
    let mut s = rustls::ServerConnection::new(sc.clone()).expect("server");
    let mut spent = Duration::ZERO;
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..16 {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let t = Instant::now();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets().expect("server");
        let mut out = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut out).unwrap();
        }
        spent += t.elapsed();
        let mut rd = &out[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().expect("client");
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() {
            return spent;
        }
    }
    panic!("handshake did not finish");
}

criterion_group!(benches, bench_handshakes, bench_bulk);
criterion_main!(benches);
