//! Property tests of the receive-side parser: never panics on any bytes,
//! and round-trips every frame the generator builds (whatever the fields).

use proptest::prelude::*;
use qsplice_netdev::mem::{MemQueue, VecFrame};
use qsplice_netdev::Burst;
use qsplice_pktgen::payload::{parse_frame, parse_payload};
use qsplice_pktgen::rx::RxSide;
use qsplice_pktgen::{FieldMode, GenConfig, Generator, Proto, Rate, SizeDist, StreamSpec};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes);
        let _ = parse_payload(&bytes);
        let mut rx = RxSide::new(4, 1_000_000_000);
        rx.frame(&bytes, 5);
        prop_assert_eq!(rx.c.frames, 1);
    }

    #[test]
    fn mutated_generator_frames_never_panic(
        seed in any::<u64>(), pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()
    ) {
        let mut f = one_frame(seed, true, Proto::Udp, 100);
        let i = pos.index(f.len());
        f[i] = val;
        let c = cut.index(f.len() + 1);
        let _ = parse_frame(&f[..c]);
    }

    #[test]
    fn generator_frames_round_trip(
        seed in any::<u64>(), vlan in any::<bool>(), tcp in any::<bool>(), size in 64u16..1519
    ) {
        let proto = if tcp { Proto::TcpSyn } else { Proto::Udp };
        let f = one_frame(seed, vlan, proto, size);
        let h = parse_frame(&f).unwrap();
        prop_assert_eq!(h.stream, 3);
        prop_assert_eq!(h.seq, 0);
        prop_assert_eq!(h.tsc, 12345);
    }
}

fn one_frame(seed: u64, vlan: bool, proto: Proto, size: u16) -> Vec<u8> {
    let mut s = StreamSpec::udp(
        3,
        "10.0.0.0".parse().unwrap(),
        "10.9.0.0".parse().unwrap(),
        1,
        1,
    );
    s.vlan = vlan.then_some(7);
    s.proto = proto;
    s.mode = FieldMode::Random;
    s.src_ip.1 = "10.0.255.255".parse().unwrap();
    s.dst_port.1 = 65535;
    let cfg = GenConfig {
        streams: vec![s.clone(), s.clone(), s.clone(), s],
        sizes: SizeDist::Fixed(size),
        rate: Rate::Max,
        count: 1,
        duration_ms: 0,
        burst: 1,
        drain_ms: 0,
        seed,
        receive: true,
    };
    let mut g = Generator::new(&cfg, 1_000_000_000, 0);
    // Stream ids come from the specs; make the first one id 3.
    let mut q = MemQueue::new([2, 0, 0, 0, 0, 1]);
    let mut b: Burst<VecFrame> = Burst::new();
    g.fill(&mut q, &mut b, 1, 12345);
    b.pop().unwrap().into_vec()
}

fn corpus() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pktgen_rx")
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let udp = one_frame(1, false, Proto::Udp, 64);
    let mut truncated = udp.clone();
    truncated.truncate(50);
    let mut bad_magic = udp.clone();
    let n = bad_magic.len();
    bad_magic[n - 18] ^= 0x55;
    vec![
        ("udp-64", udp),
        ("udp-vlan-1518", one_frame(2, true, Proto::Udp, 1518)),
        ("tcp-syn-128", one_frame(3, false, Proto::TcpSyn, 128)),
        ("tcp-syn-vlan-78", one_frame(4, true, Proto::TcpSyn, 64)),
        ("truncated", truncated),
        ("bad-magic", bad_magic),
    ]
}

/// Writes the fuzz seeds: `cargo test -p qsplice-pktgen --test rx_parser -- --ignored`.
#[test]
#[ignore = "writes the fuzz corpus seeds"]
fn write_fuzz_seeds() {
    std::fs::create_dir_all(corpus()).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(corpus().join(format!("seed-{name}")), bytes).unwrap();
    }
}

#[test]
fn fuzz_seeds_are_current() {
    for (name, bytes) in seeds() {
        let p = corpus().join(format!("seed-{name}"));
        let on_disk = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(
            on_disk, bytes,
            "{name}: regenerate with --ignored write_fuzz_seeds"
        );
        let parsed = parse_frame(&on_disk).is_ok();
        assert_eq!(parsed, !matches!(name, "truncated" | "bad-magic"), "{name}");
    }
}
