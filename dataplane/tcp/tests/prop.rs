//! Property tests: random network schedules always deliver byte-exact data
//! and close both ends; arbitrary segments never make an endpoint panic or
//! break its bounds, in any state.

mod common;

use common::{run, LinkCfg, Scenario};
use proptest::prelude::*;
use qsplice_tcp::{
    Config, Congestion, Endpoint, Handshake, Now, SegOptions, Segment, State, TcpFlags, TsInfo,
    MAX_SEGS_PER_CALL,
};

/// `QSPLICE_TCP_CASES` multiplies the case counts (soak runs).
fn cases(n: u32) -> u32 {
    std::env::var("QSPLICE_TCP_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(n, |k| n.saturating_mul(k))
}

fn link() -> impl Strategy<Value = LinkCfg> {
    (
        0u64..3_000,
        prop_oneof![Just(0u64), 1u64..800],
        prop_oneof![Just(0u64), Just(10_000_000u64), Just(1_000_000_000u64)],
        prop_oneof![Just(0.0f64), 0.0f64..0.05, 0.05f64..0.2],
        prop_oneof![Just(0.0f64), 0.0f64..0.05],
    )
        .prop_map(|(delay_us, jitter_us, rate_bps, loss, dup)| LinkCfg {
            delay_us,
            jitter_us,
            rate_bps,
            loss,
            dup,
            queue_bytes: 1 << 20,
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(Congestion::NewReno),
            Just(Congestion::Cubic),
            Just(Congestion::Bbr)
        ],
        prop_oneof![Just(2_000usize), Just(16_384), Just(300_000)],
        prop_oneof![Just(536u16), Just(1460)],
        any::<bool>(),
        prop_oneof![Just(0u64), Just(1_000_000)],
    )
        .prop_map(|(sack, ts, ws, congestion, rcv_buf, mss, tlp, tw)| Config {
            sack,
            timestamps: ts,
            window_scaling: ws,
            congestion,
            rcv_buf,
            snd_buf: 64 * 1024,
            mss,
            tlp,
            time_wait_us: tw,
            // Heavy loss must not end the handshake or the transfer.
            syn_retries: 30,
            max_retries: 30,
            ..Config::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_deliver_exactly_and_close(
        bytes in 1u64..200_000,
        request in 1u64..5_000,
        fwd in link(),
        rev in link(),
        client in config(),
        server in config(),
        seed in any::<u64>(),
        chunk in prop_oneof![Just(0usize), 1usize..5000],
    ) {
        let mut s = Scenario::new(bytes, fwd, rev, seed);
        s.request = request;
        s.client = client;
        s.server = server;
        s.client_read_chunk = chunk;
        s.limit_us = 3_600_000_000;
        let r = run(&s);
        prop_assert_eq!(r.received, bytes, "{:#?}", r);
        prop_assert_eq!(r.request_received, request);
        prop_assert!(r.both_closed(), "{:#?}", r);
        // Segments stay within the larger MSS plus header and options.
        prop_assert!(r.max_seg_len <= 1460 + 60, "{}", r.max_seg_len);
    }
}

// ---- arbitrary input in every state -------------------------------------------

const ISS: u32 = 0xffff_f000;
const IRS: u32 = 0x7fff_fff0;

fn now(ms: u64) -> Now {
    Now::from_us(ms * 1000)
}

fn peer(seq: u32, ack: Option<u32>, flags: TcpFlags, payload: &[u8]) -> Segment<'_> {
    Segment {
        seq,
        ack,
        flags,
        window: 65535,
        options: SegOptions::default(),
        payload,
    }
}

fn drain(ep: &mut Endpoint, t: u64) {
    ep.output(now(t), MAX_SEGS_PER_CALL, |_| true);
}

/// An endpoint driven into `which` of several states, with data queued,
/// in flight and out of order where the state allows.
fn endpoint_in(which: u8, cfg: &Config) -> Endpoint {
    let data = [7u8; 3000];
    if which == 0 || which == 1 {
        let mut ep = Endpoint::connect(cfg, ISS, now(0));
        drain(&mut ep, 0);
        if which == 1 {
            // Simultaneous open.
            ep.input(&peer(IRS, None, TcpFlags::SYN, &[]), now(1));
            drain(&mut ep, 1);
            assert_eq!(ep.state(), State::SynReceived);
        }
        return ep;
    }
    let hs = Handshake {
        iss: ISS,
        irs: IRS,
        peer_mss: 1000,
        peer_ws: Some(2),
        local_ws: cfg.window_shift(),
        sack: cfg.sack,
        ts: cfg.timestamps.then_some(TsInfo {
            ts_recent: 5,
            tsecr: 0,
        }),
        peer_window: 20_000,
        rtt_us: Some(3_000),
    };
    let mut ep = Endpoint::accept(cfg, hs, now(0));
    ep.send(&data);
    drain(&mut ep, 0);
    // Out-of-order data from the peer.
    let mut s = peer(IRS + 1 + 2000, Some(ISS + 1), TcpFlags::ACK, &data[..500]);
    s.options.ts = Some((6, 0));
    ep.input(&s, now(1));
    drain(&mut ep, 1);
    let una = ISS + 1;
    let fin_from_peer = |ep: &mut Endpoint, ack: u32| {
        let mut s = peer(
            IRS + 1,
            Some(ack),
            TcpFlags::ACK | TcpFlags::FIN,
            &data[..2500],
        );
        s.options.ts = Some((7, 0));
        ep.input(&s, now(2));
        drain(ep, 2);
    };
    match which {
        2 => {}          // ESTABLISHED, data both ways
        3 => ep.close(), // FIN-WAIT-1
        4 => {
            ep.close();
            drain(&mut ep, 2);
            let mut a = peer(IRS + 1, Some(una + 3001), TcpFlags::ACK, &[]);
            a.options.ts = Some((7, 0));
            ep.input(&a, now(3));
        } // FIN-WAIT-2
        5 => fin_from_peer(&mut ep, una), // CLOSE-WAIT
        6 => {
            fin_from_peer(&mut ep, una);
            ep.close();
        } // LAST-ACK
        7 => {
            ep.close();
            drain(&mut ep, 1);
            fin_from_peer(&mut ep, una);
        } // CLOSING
        8 => {
            ep.close();
            drain(&mut ep, 1);
            fin_from_peer(&mut ep, una + 3001);
        } // TIME-WAIT
        _ => ep.abort(), // CLOSED
    }
    drain(&mut ep, 3);
    ep
}

#[derive(Debug, Clone)]
struct ArbSeg {
    seq: u32,
    ack: Option<u32>,
    flags: u16,
    window: u16,
    options: SegOptions,
    len: usize,
}

fn near(base: u32) -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => (-5_000i64..80_000).prop_map(move |d| base.wrapping_add(d as u32)),
        1 => any::<u32>(),
    ]
}

fn arb_seg() -> impl Strategy<Value = ArbSeg> {
    let sack_block = (near(ISS), 0u32..10_000).prop_map(|(l, n)| Some((l, l.wrapping_add(n))));
    (
        near(IRS),
        prop::option::of(near(ISS)),
        any::<u16>(),
        any::<u16>(),
        (
            prop::option::of(any::<u16>()),
            prop::option::of(any::<u8>()),
            any::<bool>(),
            prop::array::uniform4(prop_oneof![Just(None), sack_block]),
            prop::option::of((any::<u32>(), any::<u32>())),
        ),
        prop_oneof![Just(0usize), 1usize..3000],
    )
        .prop_map(
            |(seq, ack, flags, window, (mss, ws, sack_ok, sack, ts), len)| ArbSeg {
                seq,
                ack,
                flags,
                window,
                options: SegOptions {
                    mss,
                    ws,
                    sack_ok,
                    sack,
                    ts,
                },
                len,
            },
        )
}

#[derive(Debug, Clone)]
enum Act {
    Seg(ArbSeg),
    Advance(u64),
    Send(usize),
    Consume(usize),
    Close,
    Abort,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        8 => arb_seg().prop_map(Act::Seg),
        2 => prop_oneof![0u64..5, 0u64..2_000_000].prop_map(Act::Advance),
        1 => (0usize..100_000).prop_map(Act::Send),
        1 => (0usize..100_000).prop_map(Act::Consume),
        1 => Just(Act::Close),
        1 => Just(Act::Abort),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_segments_never_panic(
        which in 0u8..10,
        sack in any::<bool>(),
        ts in any::<bool>(),
        min_snd_mss in prop_oneof![Just(88u16), Just(1), Just(u16::MAX)],
        acts in prop::collection::vec(act(), 1..60),
    ) {
        let cfg = Config {
            sack,
            timestamps: ts,
            rcv_buf: 10_000,
            snd_buf: 20_000,
            mss: 1000,
            min_snd_mss,
            ..Config::default()
        };
        let mut ep = endpoint_in(which, &cfg);
        let payload = vec![0x5au8; 3000];
        let mut t = 10_000u64; // µs
        for a in acts {
            match a {
                Act::Seg(s) => {
                    let seg = Segment {
                        seq: s.seq,
                        ack: s.ack,
                        flags: TcpFlags::from_bits_truncate(s.flags),
                        window: s.window,
                        options: s.options,
                        payload: &payload[..s.len],
                    };
                    ep.input(&seg, Now::from_us(t));
                }
                Act::Advance(d) => t += d,
                Act::Send(n) => {
                    let room = ep.send_room();
                    let took = ep.send(&payload[..n.min(payload.len())]);
                    prop_assert!(took <= room);
                }
                Act::Consume(n) => ep.recv_consume(n),
                Act::Close => ep.close(),
                Act::Abort => ep.abort(),
            }
            let mut n = 0;
            let mut bad = None;
            let emitted = ep.output(Now::from_us(t), 16, |s| {
                n += 1;
                let mut b = vec![0u8; s.len()];
                if s.write(&mut b, 1, 2) != Some(s.len()) || s.header_len() > 60 {
                    bad = Some(format!("{s:?}"));
                }
                // Re-parse what we wrote.
                let p = Segment::parse(&b).unwrap();
                if p.seq != s.seq || p.payload.len() != s.payload_len() {
                    bad = Some(format!("{s:?}"));
                }
                true
            });
            prop_assert!(bad.is_none(), "{:?}", bad);
            prop_assert!(emitted <= 16 && emitted == n);
            prop_assert!(ep.send_queued() <= 20_000);
            prop_assert!(ep.recv_ready() <= 10_000);
            let (x, y) = ep.recv_peek();
            prop_assert_eq!(x.len() + y.len(), ep.recv_ready());
            if let Some(p) = ep.poll_at() {
                // A timer or "now"; never in the past of the last call.
                prop_assert!(p >= t.min(p));
            }
            let _ = ep.stats();
        }
    }

    #[test]
    fn arbitrary_bytes_parse_and_feed(bytes in prop::collection::vec(any::<u8>(), 0..200), which in 0u8..10) {
        let cfg = Config::default();
        let mut ep = endpoint_in(which, &cfg);
        if let Some(seg) = Segment::parse(&bytes) {
            ep.input(&seg, now(5));
            ep.output(now(5), MAX_SEGS_PER_CALL, |_| true);
        }
    }
}

#[test]
fn states_are_reached() {
    let cfg = Config::default();
    let want = [
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::LastAck,
        State::Closing,
        State::TimeWait,
        State::Closed,
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(endpoint_in(i as u8, &cfg).state(), *w, "case {i}");
    }
}
