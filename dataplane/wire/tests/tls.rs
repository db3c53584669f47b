//! TLS hello readers on real hellos (tests/fixtures/tls, captured from
//! OpenSSL 3.0 and curl), reassembly across arbitrary segment splits and
//! record boundaries, bounds, and arbitrary input.

use proptest::prelude::*;
use qsplice_wire::tls::{ClientHello, HelloAssembler, ServerHello, TlsError, MAX_HANDSHAKE, TLS13};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/tls/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The first handshake message of a stream.
fn first_message(stream: &[u8]) -> Vec<u8> {
    let mut a = HelloAssembler::new();
    let n = a.push(stream).unwrap().expect("complete in the fixture");
    let m = a.message().unwrap().to_vec();
    assert_eq!(m.len(), n);
    m
}

const X25519: u16 = 0x001d;

#[test]
fn curl_client_hello() {
    let m = first_message(&fixture("ch-curl.bin"));
    let ch = ClientHello::parse(&m).unwrap();
    assert_eq!(ch.legacy_version, 0x0303);
    assert_eq!(ch.random.len(), 32);
    assert_eq!(ch.sni, Some(&b"localhost"[..]));
    assert_eq!(ch.alpn.as_slice(), &[&b"h2"[..], &b"http/1.1"[..]]);
    assert!(ch.offers_tls13);
    assert_eq!(ch.key_share_groups.as_slice(), &[X25519]);
    assert_eq!(
        ch.session_id.len(),
        32,
        "TLS 1.3 middlebox-compat session id"
    );
    assert!(ch.psk_identities.is_empty());
    assert_eq!(
        ch.session_ticket, None,
        "curl sends no session_ticket extension"
    );
}

#[test]
fn openssl_client_hellos() {
    let ch_bytes = first_message(&fixture("ch-openssl-sni-alpn.bin"));
    let ch = ClientHello::parse(&ch_bytes).unwrap();
    assert_eq!(ch.sni, Some(&b"www.example.com"[..]));
    assert_eq!(ch.alpn.as_slice(), &[&b"h2"[..], &b"http/1.1"[..]]);
    assert!(ch.offers_tls13);

    let m = first_message(&fixture("ch-openssl-tls12-only.bin"));
    let ch = ClientHello::parse(&m).unwrap();
    assert_eq!(ch.sni, Some(&b"backend.test"[..]));
    assert!(!ch.offers_tls13, "-tls1_2 offers no TLS 1.3");
    assert!(ch.key_share_groups.is_empty());
}

#[test]
fn tls12_session_id_resumption_is_visible_on_both_sides() {
    let full = first_message(&fixture("sh-tls12-new-session.bin"));
    let new = ServerHello::parse(&full).unwrap();
    assert!(!new.is_tls13());
    assert_eq!(new.session_id.len(), 32, "the server created a session");

    let ch_bytes = first_message(&fixture("ch-tls12-resume-sessid.bin"));
    let ch = ClientHello::parse(&ch_bytes).unwrap();
    assert_eq!(ch.session_id, new.session_id, "the client offers it back");

    let sh_bytes = first_message(&fixture("sh-tls12-resumed.bin"));
    let sh = ServerHello::parse(&sh_bytes).unwrap();
    assert_eq!(sh.session_id, ch.session_id, "echoed: resumed");
}

#[test]
fn tls12_ticket_offered() {
    let m = first_message(&fixture("ch-tls12-ticket.bin"));
    let ch = ClientHello::parse(&m).unwrap();
    let t = ch.session_ticket.expect("session_ticket extension");
    assert!(t.len() > 32, "a ticket is presented ({} bytes)", t.len());
    // OpenSSL's tickets start with a 16-byte key name.
    assert_ne!(&t[..16], &[0u8; 16][..]);
}

#[test]
fn tls13_psk_offered_and_accepted() {
    let full = first_message(&fixture("sh-tls13-full.bin"));
    let sh = ServerHello::parse(&full).unwrap();
    assert!(sh.is_tls13());
    assert_eq!(sh.selected_psk, None);
    assert_eq!(sh.key_share_group, Some(X25519));
    assert!(!sh.is_hrr);

    let m = first_message(&fixture("ch-tls13-psk.bin"));
    let ch = ClientHello::parse(&m).unwrap();
    assert_eq!(ch.psk_identities.len(), 1);
    assert!(
        ch.psk_identities[0].len() > 32,
        "the ticket is the identity"
    );
    let sh_bytes = first_message(&fixture("sh-tls13-psk-accepted.bin"));
    let sh = ServerHello::parse(&sh_bytes).unwrap();
    assert!(sh.is_tls13());
    assert_eq!(sh.selected_psk, Some(0), "identity 0 accepted: resumed");
    assert_eq!(sh.session_id, ch.session_id, "TLS 1.3 echoes the legacy id");
}

#[test]
fn wrong_message_kind() {
    let ch = first_message(&fixture("ch-curl.bin"));
    assert_eq!(ServerHello::parse(&ch), Err(TlsError::WrongMessage));
    let sh = first_message(&fixture("sh-tls13-full.bin"));
    assert_eq!(ClientHello::parse(&sh), Err(TlsError::WrongMessage));
}

/// Re-wrap a handshake message into records of at most `max` bytes.
fn records(msg: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(max) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[test]
fn message_split_across_records() {
    let m = first_message(&fixture("ch-curl.bin"));
    for max in [1, 3, 4, 5, 100, 511] {
        let stream = records(&m, max);
        assert_eq!(first_message(&stream), m, "records of {max}");
    }
}

#[test]
fn bytes_after_the_message_are_not_consumed() {
    let s = fixture("ch-tls13-psk.bin");
    let mut a = HelloAssembler::new();
    let mut stream = s.clone();
    stream.extend_from_slice(b"\x17\x03\x03\x00\x05hello");
    a.push(&stream).unwrap().unwrap();
    assert!(a.consumed() < stream.len());
    assert_eq!(a.consumed(), 5 + a.message().unwrap().len());
}

#[test]
fn bounds_and_garbage() {
    let mut a = HelloAssembler::new();
    assert_eq!(a.push(b"GET / HTTP/1.1\r\n"), Err(TlsError::NotHandshake));
    assert_eq!(a.push(b"\x16"), Err(TlsError::NotHandshake), "stays failed");
    a.reset();
    assert_eq!(a.push(&[22, 9, 1, 0, 4]), Err(TlsError::BadRecord));
    a.reset();
    assert_eq!(a.push(&[22, 3, 1, 0xff, 0xff]), Err(TlsError::BadRecord));
    a.reset();
    // A message declaring 1 MiB.
    assert_eq!(
        a.push(&[22, 3, 1, 0, 4, 1, 0x10, 0, 0]),
        Err(TlsError::TooLong)
    );
    a.reset();
    let big = MAX_HANDSHAKE + 1;
    let hdr = [1, (big >> 16) as u8, (big >> 8) as u8, big as u8];
    assert_eq!(a.push(&records(&hdr, 4)), Err(TlsError::TooLong));
    // Truncated inner lengths.
    let m = first_message(&fixture("ch-curl.bin"));
    for cut in [5, 40, 43, 80, m.len() - 1] {
        let mut t = m[..cut].to_vec();
        let l = t.len() - 4;
        t[1..4].copy_from_slice(&[(l >> 16) as u8, (l >> 8) as u8, l as u8]);
        assert!(ClientHello::parse(&t).is_err(), "cut at {cut}");
    }
}

#[test]
fn duplicate_extension_is_refused() {
    // A minimal ClientHello with two SNI extensions.
    let sni = |name: &[u8]| {
        let mut e = vec![0, 0];
        let list_len = 3 + name.len();
        e.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        e.extend_from_slice(&(list_len as u16).to_be_bytes());
        e.push(0);
        e.extend_from_slice(&(name.len() as u16).to_be_bytes());
        e.extend_from_slice(name);
        e
    };
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
    body.extend_from_slice(&[1, 0]); // compression null
    let mut exts = sni(b"a.test");
    let m = hello(&body, &exts);
    let one = ClientHello::parse(&m).unwrap();
    assert_eq!(one.sni, Some(&b"a.test"[..]));
    exts.extend(sni(b"b.test"));
    assert_eq!(
        ClientHello::parse(&hello(&body, &exts)),
        Err(TlsError::DuplicateExtension)
    );
}

fn hello(body: &[u8], exts: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(exts);
    let mut m = vec![1, 0, (b.len() >> 8) as u8, b.len() as u8];
    m.extend_from_slice(&b);
    m
}

proptest! {
    /// Any split of a real stream into segments gives the same message.
    #[test]
    fn any_segmentation_reassembles(cuts in proptest::collection::vec(0usize..700, 0..12)) {
        let s = fixture("ch-tls13-psk.bin");
        let want = first_message(&s);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % s.len()).collect();
        cuts.sort_unstable();
        let mut a = HelloAssembler::new();
        let mut prev = 0;
        let mut done = None;
        for c in cuts.into_iter().chain([s.len()]) {
            if c < prev { continue; }
            if let Some(n) = a.push(&s[prev..c]).unwrap() { done = Some(n); }
            prev = c;
        }
        prop_assert_eq!(done, Some(want.len()));
        prop_assert_eq!(a.message().unwrap(), &want[..]);
    }

    /// Arbitrary bytes: an error or a hello, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut a = HelloAssembler::new();
        let _ = a.push(&b);
        let _ = ClientHello::parse(&b);
        let _ = ServerHello::parse(&b);
    }

    /// Mutated real hellos: never a panic, and what parses is self-consistent.
    #[test]
    fn mutated_hellos_never_panic(i in 0usize..600, v in any::<u8>(), which in 0usize..4) {
        let name = ["ch-curl.bin", "ch-tls13-psk.bin", "sh-tls13-psk-accepted.bin", "ch-tls12-ticket.bin"][which];
        let mut m = first_message(&fixture(name));
        let i = i % m.len();
        m[i] = v;
        if let Ok(ch) = ClientHello::parse(&m) {
            prop_assert!(ch.session_id.len() <= 32);
            prop_assert!(ch.alpn.iter().all(|p| !p.is_empty()));
        }
        if let Ok(sh) = ServerHello::parse(&m) {
            prop_assert!(sh.session_id.len() <= 32);
            prop_assert_eq!(sh.is_tls13(), sh.selected_version == Some(TLS13));
        }
    }
}

/// A ClientHello held as out-of-order, overlapping, repeated segments is
/// assembled exactly as the in-order stream; a gap waits.
#[test]
fn assemble_segments_any_order() {
    use qsplice_wire::tls::{assemble_segments, HelloAssembler};
    let stream = fixture("ch-curl.bin");
    let mut whole = HelloAssembler::new();
    let want = whole.push(&stream).unwrap().expect("whole hello");
    let base = 1_000u32.wrapping_sub(7); // wraps nowhere near: plain offsets
    let cut = |a: usize, b: usize| (base.wrapping_add(a as u32), &stream[a..b.min(stream.len())]);
    let n = want + 5;
    let mut asm = HelloAssembler::new();
    // in order, reversed, overlapping, repeated
    let parts = [cut(0, 100), cut(100, 300), cut(300, n)];
    assert_eq!(assemble_segments(&mut asm, base, &parts), Ok(Some(want)));
    assert_eq!(asm.message(), whole.message());
    let rev = [cut(300, n), cut(100, 300), cut(0, 100)];
    assert_eq!(assemble_segments(&mut asm, base, &rev), Ok(Some(want)));
    let overl = [cut(0, 150), cut(120, 320), cut(0, 90), cut(310, n)];
    assert_eq!(assemble_segments(&mut asm, base, &overl), Ok(Some(want)));
    assert_eq!(asm.message(), whole.message());
    // a gap: not yet
    let gap = [cut(0, 100), cut(150, n)];
    assert_eq!(assemble_segments(&mut asm, base, &gap), Ok(None));
    // across sequence-number wrap-around
    let base2 = u32::MAX - 50;
    let parts2: Vec<(u32, &[u8])> = [(0usize, 60usize), (60, 400), (400, n)]
        .iter()
        .map(|&(a, b)| (base2.wrapping_add(a as u32), &stream[a..b]))
        .collect();
    assert_eq!(assemble_segments(&mut asm, base2, &parts2), Ok(Some(want)));
    // a piece entirely before the base is ignored
    let stale = [(base.wrapping_sub(10), &stream[..5]), cut(0, n)];
    assert_eq!(assemble_segments(&mut asm, base, &stale), Ok(Some(want)));
}

/// Real post-quantum first flights (Go crypto/tls, headless Chromium): the
/// hybrid key share is seen, and the hello reassembles from two
/// MSS-sized segments in either order.
#[test]
fn pq_clients_hellos() {
    use qsplice_wire::tls::{assemble_segments, ClientHello, HelloAssembler};
    for (name, sni) in [
        ("ch-go-x25519mlkem768.bin", "vip.test"),
        ("ch-chromium-x25519mlkem768.bin", "vip.test"),
    ] {
        let stream = fixture(name);
        let mut a = HelloAssembler::new();
        let n = a.push(&stream).unwrap().expect("whole hello");
        let ch = ClientHello::parse(a.message().unwrap()).unwrap();
        assert!(
            ch.key_share_groups.contains(&0x11ec),
            "{name}: {:?}",
            ch.key_share_groups
        );
        assert!(ch.offers_tls13, "{name}");
        assert_eq!(ch.sni, Some(sni.as_bytes()), "{name}");
        assert!(n > 1200, "{name}: a hybrid hello is big ({n} bytes)");
        // two segments at a 1460-byte MSS, delivered in reverse order
        let base = 7u32;
        let cut = 1460.min(stream.len());
        let pieces = [(base + cut as u32, &stream[cut..]), (base, &stream[..cut])];
        let mut b = HelloAssembler::new();
        let got = assemble_segments(&mut b, base, &pieces).unwrap();
        if stream.len() > cut {
            assert_eq!(got, Some(n), "{name}");
            assert_eq!(b.message(), a.message());
        }
    }
}
