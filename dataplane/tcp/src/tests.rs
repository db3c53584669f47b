//! Unit tests of the endpoint: one behaviour per test, asserted on the
//! fields (and for the SYN, the bytes) of the segments it emits.

use crate::*;
use qsplice_wire::TcpFlags as F;

const ISS: u32 = 1000;
const IRS: u32 = 5000;

/// An emitted segment, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Out {
    seq: u32,
    ack: Option<u32>,
    flags: F,
    window: u16,
    opts: OutOptions,
    payload: Vec<u8>,
}

impl Out {
    fn len(&self) -> u32 {
        self.payload.len() as u32
    }
    fn is_pure_ack(&self) -> bool {
        self.payload.is_empty() && self.flags == F::ACK
    }
}

fn drain(ep: &mut Endpoint, now: Now) -> Vec<Out> {
    let mut v = Vec::new();
    ep.output(now, MAX_SEGS_PER_CALL, |s| {
        v.push(Out {
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.window,
            opts: s.options,
            payload: [s.payload.0, s.payload.1].concat(),
        });
        true
    });
    v
}

fn ms(t: u64) -> Now {
    Now::from_us(t * 1000)
}

/// Segment from the peer.
fn seg(seq: u32, ack: Option<u32>, flags: F, window: u16, payload: &[u8]) -> Segment<'_> {
    Segment {
        seq,
        ack,
        flags: if ack.is_some() { flags | F::ACK } else { flags },
        window,
        options: SegOptions::default(),
        payload,
    }
}

/// A pure ACK from the peer (which sent no data: its seq is IRS + 1).
fn ack(a: u32, window: u16) -> Segment<'static> {
    seg(IRS + 1, Some(a), F::ACK, window, &[])
}

fn sack<'a>(mut s: Segment<'a>, blocks: &[(u32, u32)]) -> Segment<'a> {
    for (i, b) in blocks.iter().enumerate() {
        s.options.sack[i] = Some(*b);
    }
    s
}

fn cfg() -> Config {
    Config {
        mss: 1000,
        rcv_buf: 64_000,
        snd_buf: 256 * 1024,
        timestamps: false,
        quickack_segs: 0,
        tlp: false,
        ..Config::default()
    }
}

fn hs(c: &Config) -> Handshake {
    Handshake {
        iss: ISS,
        irs: IRS,
        peer_mss: 1000,
        peer_ws: Some(0),
        local_ws: c.window_shift(),
        sack: c.sack,
        ts: None,
        peer_window: 65535,
        rtt_us: None,
    }
}

fn established(c: &Config) -> Endpoint {
    Endpoint::accept(c, hs(c), ms(0))
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

// ---- handshake and state machine -------------------------------------------

#[test]
fn active_open_syn_bytes_and_established() {
    let c = Config {
        mss: 1460,
        rcv_buf: 256 * 1024,
        ..Config::default()
    };
    let mut ep = Endpoint::connect(
        &c,
        0x0102_0304,
        Now {
            us: 0,
            tsval: 0xaabb_ccdd,
        },
    );
    assert_eq!(ep.state(), State::SynSent);
    let mut bytes = Vec::new();
    ep.output(
        Now {
            us: 0,
            tsval: 0xaabb_ccdd,
        },
        8,
        |s| {
            let mut b = vec![0u8; s.len()];
            s.write(&mut b, 443, 40000).unwrap();
            bytes.push(b);
            true
        },
    );
    assert_eq!(bytes.len(), 1);
    #[rustfmt::skip]
    let want: [u8; 40] = [
        0x01, 0xbb, 0x9c, 0x40,             // ports 443 → 40000
        0x01, 0x02, 0x03, 0x04,             // seq = iss
        0, 0, 0, 0,                         // ack
        0xa0, 0x02,                         // data offset 10, SYN
        0xff, 0xff,                         // window 65535 (unscaled)
        0, 0, 0, 0,                         // checksum 0, urgent 0
        0x02, 0x04, 0x05, 0xb4,             // MSS 1460
        0x04, 0x02,                         // SACK permitted
        0x08, 0x0a, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0, // TS
        0x01, 0x03, 0x03, 0x03,             // NOP, WS 3 (256 KiB >> 3 < 64 KiB)
    ];
    assert_eq!(bytes[0], want);
    assert_eq!(ep.poll_at(), Some(1_000_000), "SYN RTO is the initial 1 s");

    // SYN-ACK: MSS 1400, WS 7, SACK, TS.
    let mut sa = seg(IRS, Some(0x0102_0305), F::SYN, 1000, &[]);
    sa.options = SegOptions {
        mss: Some(1400),
        ws: Some(7),
        sack_ok: true,
        ts: Some((777, 0xaabb_ccdd)),
        sack: [None; 4],
    };
    ep.input(
        &sa,
        Now {
            us: 30_000,
            tsval: 0xaabb_ccdd + 30,
        },
    );
    assert_eq!(ep.state(), State::Established);
    assert!(ep.sack_enabled() && ep.timestamps_enabled());
    assert_eq!(ep.window_shifts(), (7, 3));
    // SYN-ACK windows are not scaled.
    assert_eq!(ep.stats().snd_wnd, 1000);
    assert_eq!(ep.stats().snd_mss, 1400 - 12);
    // The first RTT sample is the SYN's (timed with the µs clock).
    assert_eq!(ep.stats().srtt_us, 30_000);
    let out = drain(
        &mut ep,
        Now {
            us: 30_000,
            tsval: 0xaabb_ccdd + 30,
        },
    );
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(
        (a.seq, a.ack, a.flags),
        (0x0102_0305, Some(IRS + 1), F::ACK)
    );
    assert_eq!(a.window, ((256 * 1024) >> 3) as u16);
    assert_eq!(a.opts.ts, Some((0xaabb_ccdd + 30, 777)));
    assert_eq!(ep.poll_at(), None);
}

#[test]
fn active_open_refused_by_rst() {
    let c = cfg();
    let mut ep = Endpoint::connect(&c, ISS, ms(0));
    drain(&mut ep, ms(0));
    // A RST whose ACK does not acknowledge our SYN is ignored.
    ep.input(&seg(0, Some(ISS + 5), F::RST, 0, &[]), ms(1));
    assert_eq!(ep.state(), State::SynSent);
    ep.input(&seg(0, None, F::RST, 0, &[]), ms(1));
    assert_eq!(ep.state(), State::SynSent);
    assert!(drain(&mut ep, ms(1)).is_empty());
    ep.input(&seg(0, Some(ISS + 1), F::RST, 0, &[]), ms(2));
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), Some(Outcome::Refused));
    assert!(drain(&mut ep, ms(2)).is_empty());
    assert_eq!(ep.poll_at(), None);
}

#[test]
fn syn_sent_bad_ack_gets_rst() {
    let c = cfg();
    let mut ep = Endpoint::connect(&c, ISS, ms(0));
    drain(&mut ep, ms(0));
    ep.input(&seg(IRS, Some(ISS + 77), F::SYN, 1000, &[]), ms(1));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].ack, out[0].flags),
        (ISS + 77, None, F::RST)
    );
    assert_eq!(ep.state(), State::SynSent);
}

#[test]
fn syn_retries_exhausted_times_out() {
    let c = Config {
        syn_retries: 2,
        ..cfg()
    };
    let mut ep = Endpoint::connect(&c, ISS, ms(0));
    let mut syn_times = Vec::new();
    let mut now = 0;
    for _ in 0..10 {
        let out = drain(&mut ep, Now::from_us(now));
        for o in &out {
            assert_eq!((o.seq, o.flags), (ISS, F::SYN));
            syn_times.push(now / 1000);
        }
        match ep.poll_at() {
            Some(t) => now = t,
            None => break,
        }
    }
    assert_eq!(syn_times, vec![0, 1000, 3000]);
    assert_eq!(now, 7_000_000);
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), Some(Outcome::TimedOut));
    assert_eq!(ep.stats().retransmits, 2);
}

#[test]
fn simultaneous_open() {
    let c = cfg();
    let mut ep = Endpoint::connect(&c, ISS, ms(0));
    drain(&mut ep, ms(0));
    let mut syn = seg(IRS, None, F::SYN, 2000, &[]);
    syn.options.mss = Some(1000);
    ep.input(&syn, ms(1));
    assert_eq!(ep.state(), State::SynReceived);
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].ack, out[0].flags),
        (ISS, Some(IRS + 1), F::SYN | F::ACK)
    );
    ep.input(&ack(ISS + 1, 2000), ms(2));
    assert_eq!(ep.state(), State::Established);
    assert_eq!(ep.stats().snd_wnd, 2000);
}

#[test]
fn accept_is_established_with_negotiated_values() {
    let c = Config {
        rcv_buf: 1 << 20,
        timestamps: true,
        ..cfg()
    };
    let h = Handshake {
        peer_mss: 1460,
        peer_ws: Some(7),
        ts: Some(TsInfo {
            ts_recent: 4242,
            tsecr: 90,
        }),
        peer_window: 502,
        ..hs(&c)
    };
    let mut ep = Endpoint::accept(&c, h, Now { us: 0, tsval: 100 });
    assert_eq!(ep.state(), State::Established);
    assert!(ep.may_send() && ep.may_recv() && !ep.is_closed());
    assert_eq!(ep.window_shifts(), (7, 5));
    assert_eq!(ep.stats().snd_wnd, 502 << 7);
    // Our MSS (1000) caps the peer's; the timestamp option comes off.
    assert_eq!(ep.stats().snd_mss, 1000 - 12);
    assert_eq!(ep.stats().cwnd, 10 * 988);
    // RTT from the handshake ACK's TSecr: 10 ms.
    assert_eq!(ep.stats().srtt_us, 10_000);
    // Our window is scaled down by 5 and TS.Recent echoed.
    ep.input(
        &seg(IRS + 1, Some(ISS + 1), F::ACK, 502, b"x"),
        Now { us: 1, tsval: 101 },
    );
    ep.recv_consume(1);
    let out = drain(
        &mut ep,
        Now {
            us: 50_000,
            tsval: 150,
        },
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].window, ((1 << 20) >> 5) as u16);
    assert_eq!(out[0].opts.ts, Some((150, 4242)));
}

#[test]
fn active_close_fin_wait_time_wait() {
    let c = Config {
        time_wait_us: 500_000,
        ..cfg()
    };
    let mut ep = established(&c);
    assert_eq!(ep.send(b"hello"), 5);
    ep.close();
    assert_eq!(ep.state(), State::FinWait1);
    assert!(!ep.may_send());
    assert_eq!(ep.send(b"more"), 0);
    let out = drain(&mut ep, ms(0));
    // The FIN rides on the last data segment.
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].flags, out[0].payload.as_slice()),
        (ISS + 1, F::ACK | F::PSH | F::FIN, &b"hello"[..])
    );
    ep.input(&ack(ISS + 6, 65535), ms(1));
    assert_eq!(ep.state(), State::FinWait1, "FIN not acknowledged yet");
    ep.input(&ack(ISS + 7, 65535), ms(1));
    assert_eq!(ep.state(), State::FinWait2);
    assert!(ep.may_recv());
    ep.input(&seg(IRS + 1, Some(ISS + 7), F::FIN, 65535, &[]), ms(2));
    assert_eq!(ep.state(), State::TimeWait);
    assert!(!ep.may_recv());
    let out = drain(&mut ep, ms(2));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq, out[0].ack), (ISS + 7, Some(IRS + 2)));
    assert_eq!(ep.poll_at(), Some(502_000));
    // A retransmitted FIN is ACKed again and restarts TIME-WAIT.
    ep.input(&seg(IRS + 1, Some(ISS + 7), F::FIN, 65535, &[]), ms(100));
    let out = drain(&mut ep, ms(100));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, Some(IRS + 2));
    assert_eq!(ep.poll_at(), Some(600_000));
    drain(&mut ep, ms(599));
    assert_eq!(ep.state(), State::TimeWait);
    drain(&mut ep, ms(600));
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), None);
}

#[test]
fn passive_close_close_wait_last_ack() {
    let c = cfg();
    let mut ep = established(&c);
    ep.input(&seg(IRS + 1, Some(ISS + 1), F::FIN, 65535, b"bye"), ms(1));
    assert_eq!(ep.state(), State::CloseWait);
    assert!(!ep.may_recv() && ep.may_send());
    assert_eq!(ep.recv_ready(), 3);
    let out = drain(&mut ep, ms(1));
    assert_eq!(out[0].ack, Some(IRS + 5));
    ep.send(b"ok");
    ep.close();
    assert_eq!(ep.state(), State::LastAck);
    let out = drain(&mut ep, ms(2));
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.contains(F::FIN));
    ep.input(&seg(IRS + 5, Some(ISS + 4), F::ACK, 65535, &[]), ms(3));
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), None);
}

#[test]
fn simultaneous_close_closing_and_zero_time_wait() {
    let c = Config {
        time_wait_us: 0,
        ..cfg()
    };
    let mut ep = established(&c);
    ep.close();
    let out = drain(&mut ep, ms(0));
    assert_eq!((out[0].seq, out[0].flags), (ISS + 1, F::ACK | F::FIN));
    // The peer's FIN crosses ours.
    ep.input(&seg(IRS + 1, Some(ISS + 1), F::FIN, 65535, &[]), ms(1));
    assert_eq!(ep.state(), State::Closing);
    drain(&mut ep, ms(1));
    ep.input(&seg(IRS + 2, Some(ISS + 2), F::ACK, 65535, &[]), ms(2));
    // TIME-WAIT 0: the final ACK still goes out, then CLOSED.
    assert_eq!(ep.state(), State::TimeWait);
    let out = drain(&mut ep, ms(2));
    assert!(out.iter().all(|o| o.flags == F::ACK));
    assert_eq!(ep.state(), State::Closed);
}

#[test]
fn fin_is_retransmitted_on_rto() {
    let c = cfg();
    let mut ep = established(&c);
    ep.close();
    let out = drain(&mut ep, ms(0));
    assert_eq!(out.len(), 1);
    assert_eq!(ep.poll_at(), Some(1_000_000));
    let out = drain(&mut ep, ms(1000));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq, out[0].flags), (ISS + 1, F::ACK | F::FIN));
    assert_eq!(ep.poll_at(), Some(3_000_000));
}

#[test]
fn abort_sends_rst_once() {
    let c = cfg();
    let mut ep = established(&c);
    ep.send(b"data");
    drain(&mut ep, ms(0));
    ep.abort();
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), Some(Outcome::Aborted));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].ack, out[0].flags),
        (ISS + 5, Some(IRS + 1), F::RST | F::ACK)
    );
    assert!(drain(&mut ep, ms(2)).is_empty());
    assert_eq!(ep.poll_at(), None);
}

#[test]
fn refused_output_is_planned_again() {
    let c = cfg();
    let mut ep = established(&c);
    ep.send(&data(3000));
    assert_eq!(ep.output(ms(0), 64, |_| false), 0);
    assert_eq!(ep.stats().bytes_out, 0);
    let mut n = 0;
    ep.output(ms(0), 64, |_| {
        n += 1;
        n < 2
    });
    let out = drain(&mut ep, ms(0));
    assert_eq!(
        out.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![ISS + 1001, ISS + 2001]
    );
}

// ---- RFC 5961 and out-of-window ---------------------------------------------

#[test]
fn rst_exact_resets_in_window_challenges_outside_ignored() {
    let c = cfg();
    let mut ep = established(&c);
    // Outside the window: silently dropped.
    ep.input(&seg(IRS + 1 + 70_000, None, F::RST, 0, &[]), ms(1));
    assert!(drain(&mut ep, ms(1)).is_empty());
    // In the window but not exact: challenge ACK.
    ep.input(&seg(IRS + 100, None, F::RST, 0, &[]), ms(2));
    let out = drain(&mut ep, ms(2));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].ack, out[0].flags),
        (ISS + 1, Some(IRS + 1), F::ACK)
    );
    assert_eq!(ep.stats().challenge_acks, 1);
    assert_eq!(ep.state(), State::Established);
    // Exact: reset.
    ep.input(&seg(IRS + 1, None, F::RST, 0, &[]), ms(3));
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), Some(Outcome::Reset));
    assert!(drain(&mut ep, ms(3)).is_empty());
}

#[test]
fn syn_in_established_gets_rate_limited_challenge_ack() {
    let c = cfg();
    let mut ep = established(&c);
    ep.input(&seg(123, None, F::SYN, 1000, &[]), ms(1));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].ack, out[0].flags),
        (ISS + 1, Some(IRS + 1), F::ACK)
    );
    // Within 500 ms: no second one.
    ep.input(&seg(124, None, F::SYN, 1000, &[]), ms(100));
    assert!(drain(&mut ep, ms(100)).is_empty());
    ep.input(&seg(125, None, F::SYN, 1000, &[]), ms(600));
    assert_eq!(drain(&mut ep, ms(600)).len(), 1);
    assert_eq!(ep.state(), State::Established);
    assert_eq!(ep.stats().challenge_acks, 2);
}

#[test]
fn out_of_window_and_duplicate_data_are_acked_and_dropped() {
    let c = cfg();
    let mut ep = established(&c);
    // Beyond the right edge (64000).
    ep.input(
        &seg(IRS + 1 + 64_000, Some(ISS + 1), F::ACK, 65535, b"zz"),
        ms(1),
    );
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, Some(IRS + 1));
    assert_eq!(ep.recv_ready(), 0);
    // In order, then the same again: a D-SACK for the duplicate.
    ep.input(&seg(IRS + 1, Some(ISS + 1), F::ACK, 65535, b"abcd"), ms(2));
    drain(&mut ep, ms(50));
    ep.input(&seg(IRS + 1, Some(ISS + 1), F::ACK, 65535, b"abcd"), ms(60));
    let out = drain(&mut ep, ms(60));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, Some(IRS + 5));
    assert_eq!(out[0].opts.sack[0], Some((IRS + 1, IRS + 5)));
    assert_eq!(ep.recv_ready(), 4);
}

#[test]
fn ack_of_unsent_data_is_answered_and_ignored() {
    let c = cfg();
    let mut ep = established(&c);
    ep.send(b"abc");
    drain(&mut ep, ms(0));
    ep.input(&ack(ISS + 100, 65535), ms(1));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.len(), 1);
    assert!(out[0].is_pure_ack());
    assert_eq!(ep.send_queued(), 3);
}

// ---- receiver: delayed ACK, OOO, SACK generation ------------------------------

#[test]
fn delayed_ack_every_second_full_segment_or_timeout() {
    let c = cfg();
    let mut ep = established(&c);
    let d = data(3000);
    ep.input(
        &seg(IRS + 1, Some(ISS + 1), F::ACK, 65535, &d[..1000]),
        ms(1),
    );
    assert!(drain(&mut ep, ms(1)).is_empty());
    assert_eq!(ep.poll_at(), Some(41_000));
    ep.input(
        &seg(IRS + 1001, Some(ISS + 1), F::ACK, 65535, &d[1000..2000]),
        ms(2),
    );
    let out = drain(&mut ep, ms(2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, Some(IRS + 2001));
    ep.input(
        &seg(IRS + 2001, Some(ISS + 1), F::ACK, 65535, &d[2000..]),
        ms(3),
    );
    assert!(drain(&mut ep, ms(42)).is_empty());
    let out = drain(&mut ep, ms(43));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, Some(IRS + 3001));
    let (a, b) = ep.recv_peek();
    assert_eq!([a, b].concat(), d);
}

#[test]
fn quickack_acks_each_segment_at_first() {
    let c = Config {
        quickack_segs: 2,
        ..cfg()
    };
    let mut ep = established(&c);
    let d = data(1000);
    for i in 0..3u32 {
        ep.input(
            &seg(IRS + 1 + i * 1000, Some(ISS + 1), F::ACK, 65535, &d),
            ms(1),
        );
        let n = drain(&mut ep, ms(1)).len();
        assert_eq!(n, if i < 2 { 1 } else { 0 }, "segment {i}");
    }
}

#[test]
fn sack_blocks_for_out_of_order_arrivals() {
    // Timestamps on: 3 blocks at most.
    let c = Config {
        timestamps: true,
        ..cfg()
    };
    let h = Handshake {
        ts: Some(TsInfo {
            ts_recent: 1,
            tsecr: 0,
        }),
        ..hs(&c)
    };
    let mut ep = Endpoint::accept(&c, h, ms(0));
    let d = data(8000);
    let r = IRS + 1;
    let feed = |ep: &mut Endpoint, k: u32| {
        let mut s = seg(
            r + k * 1000,
            Some(ISS + 1),
            F::ACK,
            65535,
            &d[k as usize * 1000..][..1000],
        );
        s.options.ts = Some((2, 0));
        ep.input(&s, ms(1));
        let out = drain(ep, ms(1));
        assert_eq!(out.len(), 1, "OOO and hole-filling data is ACKed at once");
        (out[0].ack.unwrap(), out[0].opts.sack)
    };
    let b = |k: u32, l: u32| Some((r + k * 1000, r + l * 1000));
    assert_eq!(feed(&mut ep, 1), (r, [b(1, 2), None, None, None]));
    assert_eq!(feed(&mut ep, 3), (r, [b(3, 4), b(1, 2), None, None]));
    assert_eq!(feed(&mut ep, 5), (r, [b(5, 6), b(3, 4), b(1, 2), None]));
    // A fourth range: the three most recent are reported.
    assert_eq!(feed(&mut ep, 7), (r, [b(7, 8), b(5, 6), b(3, 4), None]));
    // Bridging 1-2 and 3-4 makes the merged block the most recent.
    assert_eq!(feed(&mut ep, 2), (r, [b(1, 4), b(7, 8), b(5, 6), None]));
    // The hole at the front filled: the ACK jumps.
    assert_eq!(feed(&mut ep, 0), (r + 4000, [b(7, 8), b(5, 6), None, None]));
    assert_eq!(ep.stats().ooo_segments, 5);
    assert_eq!(feed(&mut ep, 4), (r + 6000, [b(7, 8), None, None, None]));
    assert_eq!(feed(&mut ep, 6), (r + 8000, [None; 4]));
    let (x, y) = ep.recv_peek();
    assert_eq!([x, y].concat(), d);
}

#[test]
fn four_sack_blocks_without_timestamps() {
    let c = cfg();
    let mut ep = established(&c);
    let d = data(1000);
    for k in [1u32, 3, 5, 7] {
        ep.input(
            &seg(IRS + 1 + k * 1000, Some(ISS + 1), F::ACK, 65535, &d),
            ms(1),
        );
    }
    let out = drain(&mut ep, ms(1));
    let last = out.last().unwrap();
    let r = IRS + 1;
    assert_eq!(
        last.opts.sack,
        [
            Some((r + 7000, r + 8000)),
            Some((r + 5000, r + 6000)),
            Some((r + 3000, r + 4000)),
            Some((r + 1000, r + 2000))
        ]
    );
}

#[test]
fn out_of_order_ranges_are_bounded() {
    let c = Config {
        rcv_buf: 1 << 20,
        ..cfg()
    };
    let mut ep = established(&c);
    let d = data(10);
    for k in 0..(OOO_RANGES as u32 + 4) {
        ep.input(
            &seg(IRS + 1 + 100 + k * 100, Some(ISS + 1), F::ACK, 65535, &d),
            ms(1),
        );
    }
    assert_eq!(ep.stats().ooo_segments, OOO_RANGES as u64);
    assert_eq!(ep.stats().ooo_dropped, 4);
}

#[test]
fn receive_window_closes_and_reopens_with_update() {
    let c = Config {
        rcv_buf: 4000,
        ..cfg()
    };
    let mut ep = established(&c);
    let d = data(5000);
    for k in 0..4u32 {
        let s = seg(
            IRS + 1 + k * 1000,
            Some(ISS + 1),
            F::ACK,
            65535,
            &d[k as usize * 1000..][..1000],
        );
        ep.input(&s, ms(1));
    }
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.last().unwrap().window, 0);
    assert_eq!(out.last().unwrap().ack, Some(IRS + 4001));
    // A zero-window probe: not accepted, answered with the window.
    ep.input(
        &seg(IRS + 4001, Some(ISS + 1), F::ACK, 65535, &d[4000..4001]),
        ms(2),
    );
    let out = drain(&mut ep, ms(2));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].ack, out[0].window), (Some(IRS + 4001), 0));
    // Reading a little does not reopen (receiver SWS avoidance) ...
    ep.recv_consume(500);
    assert!(drain(&mut ep, ms(3)).is_empty());
    // ... reading half the buffer does, with a window update.
    ep.recv_consume(1500);
    let out = drain(&mut ep, ms(4));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].window, 2000);
}

#[test]
fn window_never_shrinks_with_scaling() {
    // rcv_buf 100000 → shift 1; odd free space rounds up, not down.
    let c = Config {
        rcv_buf: 100_000,
        ..cfg()
    };
    let mut ep = established(&c);
    assert_eq!(ep.window_shifts(), (0, 1));
    let d = data(999);
    let mut edge = IRS + 1 + 65535; // the SYN-ACK's (unscaled) window
    for k in 0..50u32 {
        let s = seg(IRS + 1 + k * 999, Some(ISS + 1), F::ACK, 65535, &d);
        ep.input(&s, ms(1));
        for o in drain(&mut ep, ms(50 * u64::from(k) + 45)) {
            let e = o.ack.unwrap() + (u32::from(o.window) << 1);
            assert!(e >= edge, "edge moved left: {e} < {edge}");
            edge = e;
        }
        if k % 3 == 0 {
            ep.recv_consume(1234);
        }
    }
}

// ---- sender: windows, MSS clamp, initial window -------------------------------

#[test]
fn initial_window_is_ten_segments() {
    let c = cfg();
    let mut ep = established(&c);
    ep.send(&data(20_000));
    let out = drain(&mut ep, ms(0));
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|o| o.len() == 1000));
    assert_eq!(out[9].seq, ISS + 1 + 9000);
}

#[test]
fn peer_window_scaled_limits_sending() {
    let c = Config {
        initial_cwnd_segs: 100,
        ..cfg()
    };
    let h = Handshake {
        peer_ws: Some(7),
        peer_window: 100,
        ..hs(&c)
    };
    let mut ep = Endpoint::accept(&c, h, ms(0));
    ep.send(&data(50_000));
    let out = drain(&mut ep, ms(0));
    // 12800 bytes of window: 12 full segments, the 800-byte rest is
    // less than half the window (sender SWS avoidance).
    assert_eq!(out.iter().map(|o| o.len()).sum::<u32>(), 12_000);
    ep.input(&ack(ISS + 1 + 12_000, 200), ms(1));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.iter().map(|o| o.len()).sum::<u32>(), 25_000);
}

#[test]
fn tiny_peer_mss_is_clamped_to_min_snd_mss() {
    for mss in [1u16, 8, 48] {
        for ts in [false, true] {
            let c = Config {
                timestamps: ts,
                ..cfg()
            };
            let h = Handshake {
                peer_mss: mss,
                ts: ts.then_some(TsInfo {
                    ts_recent: 1,
                    tsecr: 0,
                }),
                ..hs(&c)
            };
            let mut ep = Endpoint::accept(&c, h, ms(0));
            ep.send(&data(2000));
            let out = drain(&mut ep, ms(0));
            assert_eq!(
                out[0].len(),
                u32::from(DEFAULT_MIN_SND_MSS),
                "mss {mss} ts {ts}"
            );
            assert!(out
                .iter()
                .all(|o| o.len() >= 88 || o.seq + o.len() == ISS + 2001));
        }
    }
}

#[test]
fn zero_window_persist_probes_with_backoff() {
    let c = cfg();
    let mut ep = established(&c);
    ep.send(&data(3000));
    drain(&mut ep, ms(0));
    // Everything acknowledged, window closed.
    ep.input(&ack(ISS + 3001, 0), ms(10));
    ep.send(&data(500));
    assert!(drain(&mut ep, ms(10)).is_empty());
    // Persist timer: the RTO (from the 10 ms sample: 200 ms floor).
    assert_eq!(ep.poll_at(), Some(210_000));
    let out = drain(&mut ep, ms(210));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq, out[0].len()), (ISS + 3001, 1));
    // Still closed: the probe is not taken; next probe after 2×.
    ep.input(&ack(ISS + 3001, 0), ms(211));
    assert!(drain(&mut ep, ms(211)).is_empty());
    let next = ep.poll_at().unwrap();
    assert_eq!(next, 210_000 + 400_000);
    let out = drain(&mut ep, Now::from_us(next));
    assert_eq!((out[0].seq, out[0].len()), (ISS + 3001, 1));
    assert_eq!(ep.stats().persist_probes, 2);
    assert_eq!(
        ep.stats().dup_acks,
        0,
        "probe answers are not duplicate ACKs"
    );
    // The window opens: the rest goes out.
    ep.input(&ack(ISS + 3001, 10_000), ms(700));
    let out = drain(&mut ep, ms(700));
    assert_eq!(out.iter().map(|o| o.len()).sum::<u32>(), 500);
    assert_eq!(ep.stats().rto_timeouts, 0);
}

// ---- loss recovery ---------------------------------------------------------------

/// Sends `n` full segments and returns the endpoint (cwnd permitting).
fn flight(c: &Config, n: usize, queued: usize) -> Endpoint {
    let mut ep = established(c);
    ep.send(&data(queued));
    let out = drain(&mut ep, ms(0));
    assert_eq!(out.len(), n);
    ep
}

#[test]
fn fast_retransmit_after_three_dupacks_without_sack() {
    let c = Config {
        sack: false,
        congestion: Congestion::NewReno,
        ..cfg()
    };
    let mut ep = flight(&c, 10, 20_000);
    let una = ISS + 1;
    // Segment 0 lost: dupacks for segments 1, 2, 3.
    ep.input(&ack(una, 65535), ms(1));
    // Limited transmit (RFC 3042): one new segment per dupack.
    let out = drain(&mut ep, ms(1));
    assert_eq!(
        out.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![una + 10_000]
    );
    ep.input(&ack(una, 65535), ms(1));
    assert_eq!(drain(&mut ep, ms(1)).len(), 1);
    ep.input(&ack(una, 65535), ms(1));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out[0].seq, una, "fast retransmit of the first segment");
    assert_eq!(out[0].len(), 1000);
    assert_eq!(ep.stats().fast_retransmits, 1);
    assert_eq!(ep.stats().sack_recoveries, 0);
    assert_eq!(ep.stats().dup_acks, 3);
    // NewReno: ssthresh = flight/2, cwnd inflated by 3 segments.
    assert_eq!(ep.stats().ssthresh, 6000);
}

#[test]
fn newreno_partial_ack_retransmits_next_hole() {
    let c = Config {
        sack: false,
        congestion: Congestion::NewReno,
        ..cfg()
    };
    let mut ep = flight(&c, 10, 10_000);
    let una = ISS + 1;
    // Segments 0 and 5 lost.
    for _ in 0..3 {
        ep.input(&ack(una, 65535), ms(1));
    }
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![una]);
    // More dupacks (segments 4, 6..9) inflate the window; nothing new to send.
    for _ in 0..5 {
        ep.input(&ack(una, 65535), ms(2));
    }
    assert!(drain(&mut ep, ms(2)).is_empty());
    // The retransmission fills hole 0: partial ACK up to segment 5.
    ep.input(&ack(una + 5000, 65535), ms(3));
    let out = drain(&mut ep, ms(3));
    assert_eq!(
        out.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![una + 5000]
    );
    ep.input(&ack(una + 10_000, 65535), ms(4));
    assert_eq!(ep.stats().rto_timeouts, 0);
    assert_eq!(ep.stats().fast_retransmits, 1);
    assert_eq!(ep.stats().retransmits, 2);
    // Full ACK: cwnd = min(ssthresh, max(flight, MSS) + MSS).
    assert_eq!(ep.stats().cwnd, 2000);
    assert_eq!(ep.stats().ssthresh, 5000);
}

#[test]
fn sack_scoreboard_and_is_lost_trigger_recovery() {
    let c = cfg();
    let mut ep = flight(&c, 10, 30_000);
    let una = ISS + 1;
    // One ACK SACKing segments 1..=3: IsLost(una) (3000 > 2·MSS SACKed
    // above) triggers recovery on the first duplicate ACK.
    ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 4000)]), ms(1));
    assert_eq!(ep.stats().dup_acks, 1);
    assert_eq!(ep.stats().fast_retransmits, 1);
    assert_eq!(ep.stats().sack_recoveries, 1);
    let out = drain(&mut ep, ms(1));
    assert_eq!(out[0].seq, una);
    assert_eq!(out[0].len(), 1000);
    // cwnd = ssthresh = 7 segments (CUBIC β 0.7); pipe = 10 − 3 SACKed −
    // 1 lost + 1 retransmitted = 7: nothing more yet.
    assert_eq!(out.len(), 1);
    assert_eq!(ep.stats().cwnd, 7000);
    // Segments 5 and 6 SACKed too (4 still missing, but not yet "lost":
    // only 2 segments SACKed above it) → pipe shrinks, new data flows.
    ep.input(
        &sack(
            ack(una, 65535),
            &[(una + 5000, una + 7000), (una + 1000, una + 4000)],
        ),
        ms(2),
    );
    let out = drain(&mut ep, ms(2));
    assert_eq!(
        out.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![una + 10_000, una + 11_000]
    );
    // Segments 7, 8 SACKed: segment 4 is now lost (3 segments above) and
    // retransmitted before new data.
    ep.input(
        &sack(
            ack(una, 65535),
            &[(una + 5000, una + 9000), (una + 1000, una + 4000)],
        ),
        ms(3),
    );
    let out = drain(&mut ep, ms(3));
    assert_eq!(out[0].seq, una + 4000);
    assert_eq!(ep.stats().retransmits, 2);
    // The retransmissions arrive: cumulative ACK past the recovery point.
    ep.input(&ack(una + 12_000, 65535), ms(4));
    assert_eq!(ep.stats().rto_timeouts, 0);
    assert_eq!(ep.stats().cwnd, 7000);
}

#[test]
fn three_dupacks_with_sack_blocks_of_small_segments() {
    // Small SACKed ranges: DupThresh duplicate ACKs still trigger.
    let c = cfg();
    let mut ep = established(&c);
    for _ in 0..10 {
        ep.send(&data(100));
        drain(&mut ep, ms(0));
    }
    let una = ISS + 1;
    for k in 1..=3u32 {
        ep.input(
            &sack(ack(una, 65535), &[(una + 100, una + 100 + k * 100)]),
            ms(1),
        );
    }
    assert_eq!(ep.stats().fast_retransmits, 1);
    let out = drain(&mut ep, ms(1));
    assert_eq!((out[0].seq, out[0].len()), (una, 100));
}

#[test]
fn rto_backoff_min_rto_and_cwnd_reset() {
    let c = Config {
        congestion: Congestion::NewReno,
        ..cfg()
    };
    let mut ep = established(&c);
    ep.send(&data(1000));
    drain(&mut ep, ms(0));
    // 1 ms RTT: RTO = max(200 ms, srtt + 4·rttvar).
    ep.input(&ack(ISS + 1001, 65535), ms(1));
    assert_eq!(ep.stats().srtt_us, 1000);
    assert_eq!(ep.stats().rto_us, 200_000);
    ep.send(&data(3000));
    assert_eq!(drain(&mut ep, ms(10)).len(), 3);
    let mut times = Vec::new();
    for _ in 0..4 {
        let t = ep.poll_at().unwrap();
        let out = drain(&mut ep, Now::from_us(t));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, ISS + 1001);
        times.push(t / 1000);
    }
    assert_eq!(times, vec![210, 610, 1410, 3010]);
    assert_eq!(ep.stats().rto_timeouts, 4);
    assert_eq!(ep.stats().cwnd, 1000);
    assert_eq!(ep.stats().ssthresh, 2000);
    // The ACK: slow start from 1 segment; the backoff stays until a new
    // sample (Karn), which the next new segment gives.
    ep.input(&ack(ISS + 2001, 65535), ms(3011));
    let out = drain(&mut ep, ms(3011));
    assert_eq!(
        out.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![ISS + 2001, ISS + 3001]
    );
}

#[test]
fn max_retries_times_out() {
    let c = Config {
        max_retries: 3,
        ..cfg()
    };
    let mut ep = established(&c);
    ep.send(&data(100));
    drain(&mut ep, ms(0));
    for _ in 0..10 {
        let Some(t) = ep.poll_at() else { break };
        drain(&mut ep, Now::from_us(t));
    }
    assert_eq!(ep.state(), State::Closed);
    assert_eq!(ep.outcome(), Some(Outcome::TimedOut));
    assert_eq!(ep.stats().rto_timeouts, 3);
}

#[test]
fn rto_resends_from_una_skipping_sacked() {
    let c = cfg();
    let mut ep = flight(&c, 5, 5000);
    let una = ISS + 1;
    // Segments 2 and 3 SACKed: not enough to call 0 and 1 lost.
    ep.input(&sack(ack(una, 65535), &[(una + 2000, una + 4000)]), ms(1));
    assert_eq!(ep.stats().fast_retransmits, 0);
    assert!(drain(&mut ep, ms(1)).is_empty());
    let t = ep.poll_at().unwrap();
    let out = drain(&mut ep, Now::from_us(t));
    assert_eq!(out.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![una]);
    assert_eq!(ep.stats().rto_timeouts, 1);
    // ACK of segment 0: cwnd 2, segments 1 and 4 (2, 3 are SACKed).
    ep.input(
        &sack(ack(una + 1000, 65535), &[(una + 2000, una + 4000)]),
        Now::from_us(t + 1000),
    );
    let out = drain(&mut ep, Now::from_us(t + 1000));
    assert_eq!(
        out.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![una + 1000, una + 4000]
    );
}

#[test]
fn rtt_measured_from_timestamps_on_retransmission() {
    let c = Config {
        timestamps: true,
        ..cfg()
    };
    let h = Handshake {
        ts: Some(TsInfo {
            ts_recent: 1,
            tsecr: 0,
        }),
        ..hs(&c)
    };
    let mut ep = Endpoint::accept(&c, h, Now { us: 0, tsval: 100 });
    assert_eq!(ep.stats().rtt_samples, 0);
    ep.send(&data(500));
    let out = drain(&mut ep, Now { us: 0, tsval: 100 });
    assert_eq!(out[0].opts.ts, Some((100, 1)));
    // RTO at 1 s: the retransmission carries TSval 1100.
    let out = drain(
        &mut ep,
        Now {
            us: 1_000_000,
            tsval: 1100,
        },
    );
    assert_eq!(out[0].opts.ts, Some((1100, 1)));
    // Its ACK echoes 1100 and arrives 37 ms later: Karn forbids the µs
    // timer, the timestamp measures.
    let mut a = ack(ISS + 501, 65535);
    a.options.ts = Some((2, 1100));
    ep.input(
        &a,
        Now {
            us: 1_037_000,
            tsval: 1137,
        },
    );
    assert_eq!(ep.stats().rtt_samples, 1);
    assert_eq!(ep.stats().srtt_us, 37_000);
    // RTO recomputed (backoff reset): max(200 ms, 37 + 4·18.5 ms).
    assert_eq!(ep.stats().rto_us, 200_000);
    // TS.Recent updated from the in-order segment and echoed.
    ep.send(b"x");
    let out = drain(
        &mut ep,
        Now {
            us: 1_040_000,
            tsval: 1140,
        },
    );
    assert_eq!(out[0].opts.ts, Some((1140, 2)));
}

#[test]
fn paws_drops_old_timestamps() {
    let c = Config {
        timestamps: true,
        ..cfg()
    };
    let h = Handshake {
        ts: Some(TsInfo {
            ts_recent: 1000,
            tsecr: 0,
        }),
        ..hs(&c)
    };
    let mut ep = Endpoint::accept(&c, h, ms(0));
    let mut s = seg(IRS + 1, Some(ISS + 1), F::ACK, 65535, b"old");
    s.options.ts = Some((999, 0));
    ep.input(&s, ms(1));
    assert_eq!(ep.recv_ready(), 0);
    assert_eq!(ep.stats().paws_drops, 1);
    s.options.ts = Some((1000, 0));
    ep.input(&s, ms(1));
    assert_eq!(ep.recv_ready(), 3);
}

#[test]
fn tail_loss_probe_repairs_tail_before_rto() {
    let c = Config { tlp: true, ..cfg() };
    let mut ep = established(&c);
    ep.send(&data(1000));
    drain(&mut ep, ms(0));
    ep.input(&ack(ISS + 1001, 65535), ms(10));
    assert_eq!(ep.stats().srtt_us, 10_000);
    // A 3-segment response whose last segment is lost.
    ep.send(&data(3000));
    assert_eq!(drain(&mut ep, ms(20)).len(), 3);
    ep.input(&ack(ISS + 3001, 65535), ms(30));
    // PTO = 2·SRTT + 2 ms (+40 ms for a lone segment in flight).
    let t = ep.poll_at().unwrap();
    assert_eq!(t, 30_000 + 20_000 + 2_000 + 40_000);
    let out = drain(&mut ep, Now::from_us(t));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq, out[0].len()), (ISS + 3001, 1000));
    assert_eq!(ep.stats().tlp_probes, 1);
    ep.input(&ack(ISS + 4001, 65535), Now::from_us(t + 10_000));
    assert_eq!(ep.stats().tlp_recoveries, 1);
    assert_eq!(ep.stats().rto_timeouts, 0);
    assert_eq!(ep.poll_at(), None);
}

#[test]
fn tail_loss_probe_spurious_with_dsack_keeps_cwnd() {
    let c = Config { tlp: true, ..cfg() };
    let mut ep = established(&c);
    ep.send(&data(1000));
    drain(&mut ep, ms(0));
    ep.input(&ack(ISS + 1001, 65535), ms(10));
    ep.send(&data(1000));
    drain(&mut ep, ms(20));
    let t = ep.poll_at().unwrap();
    drain(&mut ep, Now::from_us(t));
    let cwnd = ep.stats().cwnd;
    // The original arrived too: the ACK reports the probe as a duplicate.
    ep.input(
        &sack(ack(ISS + 2001, 65535), &[(ISS + 1001, ISS + 2001)]),
        Now::from_us(t + 1),
    );
    assert_eq!(ep.stats().dsacks_rx, 1);
    assert_eq!(ep.stats().tlp_recoveries, 0);
    assert!(ep.stats().cwnd >= cwnd);
}

#[test]
fn early_retransmit_on_a_short_tail() {
    // RFC 5827: 3 segments outstanding, nothing more to send: the first is
    // lost, 2 duplicate ACKs (SACKing the other two) suffice.
    for sack_on in [true, false] {
        let c = Config {
            sack: sack_on,
            ..cfg()
        };
        let mut ep = flight(&c, 3, 3000);
        let una = ISS + 1;
        ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 2000)]), ms(1));
        assert_eq!(ep.stats().fast_retransmits, 0, "sack {sack_on}");
        ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 3000)]), ms(1));
        assert_eq!(ep.stats().fast_retransmits, 1, "sack {sack_on}");
        let out = drain(&mut ep, ms(1));
        assert_eq!((out[0].seq, out[0].len()), (una, 1000));
    }
    // With more data waiting, the usual threshold applies.
    let c = Config {
        sack: false,
        initial_cwnd_segs: 3,
        ..cfg()
    };
    let mut ep = flight(&c, 3, 10_000);
    for _ in 0..2 {
        ep.input(&ack(ISS + 1, 65535), ms(1));
    }
    assert_eq!(ep.stats().fast_retransmits, 0);
}

#[test]
fn reset_reply_per_rfc9293() {
    let with_ack = seg(10, Some(77), F::ACK, 0, b"abc");
    let r = reset_reply(&with_ack).unwrap();
    assert_eq!((r.seq, r.ack, r.flags), (77, None, F::RST));
    let syn = seg(10, None, F::SYN, 0, &[]);
    let r = reset_reply(&syn).unwrap();
    assert_eq!((r.seq, r.ack, r.flags), (0, Some(11), F::RST | F::ACK));
    let fin = seg(10, None, F::FIN, 0, b"ab");
    assert_eq!(reset_reply(&fin).unwrap().ack, Some(13));
    assert!(reset_reply(&seg(1, None, F::RST, 0, &[])).is_none());
}

#[test]
fn time_wait_accepts_newer_syn_only() {
    let c = Config {
        timestamps: true,
        ..cfg()
    };
    let h = Handshake {
        ts: Some(TsInfo {
            ts_recent: 100,
            tsecr: 0,
        }),
        ..hs(&c)
    };
    let mut ep = Endpoint::accept(&c, h, ms(0));
    let mut probe = seg(IRS + 1, None, F::SYN, 1000, &[]);
    probe.options.ts = Some((500, 0));
    assert!(!ep.accepts_new_syn(&probe), "not in TIME-WAIT");
    ep.close();
    drain(&mut ep, ms(0));
    let mut a = seg(IRS + 1, Some(ISS + 2), F::FIN, 65535, &[]);
    a.options.ts = Some((200, 0));
    ep.input(&a, ms(1));
    assert_eq!(ep.state(), State::TimeWait);
    assert!(ep.accepts_new_syn(&probe));
    probe.options.ts = Some((150, 0));
    assert!(
        !ep.accepts_new_syn(&probe),
        "TSval older than the last seen"
    );
    // Without timestamps: the sequence number decides.
    let mut ep = established(&cfg());
    ep.close();
    drain(&mut ep, ms(0));
    ep.input(&seg(IRS + 1, Some(ISS + 2), F::FIN, 65535, &[]), ms(1));
    assert_eq!(ep.state(), State::TimeWait);
    assert!(ep.accepts_new_syn(&seg(IRS + 100_000, None, F::SYN, 0, &[])));
    assert!(!ep.accepts_new_syn(&seg(IRS, None, F::SYN, 0, &[])));
}

#[test]
fn recovery_does_not_resend_in_flight_data_when_the_send_buffer_is_all_sent() {
    // Everything queued is in flight (a send buffer the window outgrew):
    // RFC 6675 NextSeg rule 3 would resend every un-SACKed segment above
    // HighRxt once the pipe leaves room — segments still in flight, not
    // lost: spurious retransmissions (half of them end to end).
    let c = Config {
        snd_buf: 10_000,
        ..cfg()
    };
    let mut ep = flight(&c, 10, 10_000);
    let una = ISS + 1;
    ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 4000)]), ms(1));
    let out = drain(&mut ep, ms(1));
    assert_eq!(out.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![una]);
    // Segments 4..=6 SACKed too: pipe = 3 (7, 8, 9 in flight) + 1
    // retransmitted = 4 < cwnd 7, but nothing is lost and nothing new can go.
    ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 7000)]), ms(2));
    let out = drain(&mut ep, ms(2));
    assert!(
        out.iter().all(|o| o.payload.is_empty()),
        "resent in-flight data: {:?}",
        out.iter().map(|o| o.seq - una).collect::<Vec<_>>()
    );
    // 7, 8, 9 arrive: SACKed, then the retransmission: all acknowledged.
    ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 10_000)]), ms(2));
    assert!(drain(&mut ep, ms(2)).iter().all(|o| o.payload.is_empty()));
    ep.input(&ack(una + 10_000, 65535), ms(3));
    assert_eq!(ep.stats().retransmits, 1);
}

#[test]
fn lost_retransmission_is_resent_after_a_probe_timeout_not_an_rto() {
    // The fast retransmission of the head is lost, everything after it is
    // SACKed and nothing new can be sent (the send buffer is all in
    // flight): no SACK can ever show the retransmission lost. Once the
    // connection has been quiet for a probe timeout (max(2·SRTT, 10 ms)),
    // what is still un-SACKed is resent, without an RTO (200 ms, cwnd 1).
    let c = Config {
        snd_buf: 10_000,
        ..cfg()
    };
    let mut ep = established(&c);
    ep.send(&data(1000));
    drain(&mut ep, ms(0));
    ep.input(&ack(ISS + 1001, 65535), ms(1));
    assert_eq!(ep.stats().srtt_us, 1000);
    let una = ISS + 1001;
    ep.send(&data(9000));
    assert_eq!(drain(&mut ep, ms(1)).len(), 9);
    ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 4000)]), ms(2));
    let out = drain(&mut ep, ms(2));
    assert_eq!(out.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![una]);
    ep.input(&sack(ack(una, 65535), &[(una + 1000, una + 9000)]), ms(3));
    assert!(drain(&mut ep, ms(3)).iter().all(|o| o.payload.is_empty()));
    let t = ep.poll_at().unwrap();
    assert!(t <= 14_000, "next wake-up at {t} us");
    let out = drain(&mut ep, Now::from_us(t));
    assert_eq!(out.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![una]);
    assert_eq!(ep.stats().rto_timeouts, 0);
    assert_eq!(ep.stats().recovery_probes, 1);
    // It arrives: recovery ends with cwnd = ssthresh, not 1 segment.
    ep.input(&ack(una + 9000, 65535), Now::from_us(t + 1000));
    assert_eq!(ep.stats().cwnd, ep.stats().ssthresh);
    assert!(ep.stats().cwnd > 2000);
}

#[test]
fn cork_holds_the_runt_until_uncorked() {
    let c = cfg();
    let mut ep = established(&c);
    // Three writes of 1,470 bytes (a TLS record per received segment):
    // corked, only full segments leave after each write.
    ep.set_cork(true);
    let mut sent = Vec::new();
    for _ in 0..3 {
        ep.send(&data(1470));
        sent.extend(drain(&mut ep, ms(1)));
    }
    let lens: Vec<usize> = sent.iter().map(|o| o.payload.len()).collect();
    assert_eq!(lens, vec![1000, 1000, 1000, 1000]);
    assert!(sent.iter().all(|o| !o.flags.contains(F::PSH)));
    // Uncorked at the end of the burst: the runt goes, with PSH.
    ep.set_cork(false);
    let tail = drain(&mut ep, ms(1));
    assert_eq!(tail.len(), 1);
    assert_eq!((tail[0].seq, tail[0].payload.len()), (ISS + 1 + 4000, 410));
    assert!(tail[0].flags.contains(F::PSH));
    // A FIN is never held: corked, the last runt leaves with it.
    ep.set_cork(true);
    ep.send(&data(10));
    ep.close();
    let fin = drain(&mut ep, ms(2));
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].payload.len(), 10);
    assert!(fin[0].flags.contains(F::FIN));
}

#[test]
fn uncorked_sends_the_runt_at_once() {
    let c = cfg();
    let mut ep = established(&c);
    ep.send(&data(1470));
    let lens: Vec<usize> = drain(&mut ep, ms(1))
        .iter()
        .map(|o| o.payload.len())
        .collect();
    assert_eq!(lens, vec![1000, 470]);
}

#[test]
fn packet_too_big_lowers_the_mss_and_resends_the_flight_at_once() {
    let mut ep = established(&cfg());
    ep.send(&data(4000));
    let first = drain(&mut ep, ms(0));
    assert_eq!(
        first.iter().map(Out::len).collect::<Vec<_>>(),
        vec![1000; 4]
    );
    // Outside snd_una..=snd_nxt: ignored.
    assert!(!ep.path_mtu(600, ISS, ms(1)));
    assert!(!ep.path_mtu(600, ISS + 4002, ms(1)));
    // Not lower than the MSS: ignored.
    assert!(!ep.path_mtu(1400, ISS + 1, ms(1)));
    assert_eq!(ep.stats().pmtu_lowered, 0);
    // A router reports the second segment too big: 600 bytes from now on,
    // the whole flight again at once — no waiting for the RTO.
    assert!(ep.path_mtu(600, ISS + 1001, ms(2)));
    assert_eq!(ep.stats().snd_mss, 600);
    assert_eq!(ep.stats().pmtu_lowered, 1);
    assert_eq!(ep.poll_at(), Some(2000), "due now");
    let again = drain(&mut ep, ms(2));
    assert!(!again.is_empty());
    assert_eq!(again[0].seq, ISS + 1);
    assert!(again.iter().all(|o| o.len() <= 600), "{again:?}");
    // Everything arrives at the new size: the peer acknowledges as it goes.
    let mut una = ISS + 1;
    let mut t = 3;
    let mut sent = again;
    while una < ISS + 4001 && t < 5000 {
        for o in &sent {
            if o.seq == una {
                una = o.seq + o.len();
            }
        }
        ep.input(&ack(una, 65535), ms(t));
        sent = drain(&mut ep, ms(t));
        assert!(sent.iter().all(|o| o.len() <= 600), "{sent:?}");
        t += 1;
    }
    assert_eq!(una, ISS + 4001, "the data went through at 600 bytes");
    // Idle (all acknowledged): an error quoting the next byte still
    // applies (Linux accepts snd_una ≤ seq ≤ snd_nxt); a forged one cannot
    // drive the MSS below the floor (88).
    assert!(ep.path_mtu(10, ISS + 4001, ms(t)));
    assert_eq!(ep.stats().snd_mss, 88);
    ep.send(&data(1000));
    let out = drain(&mut ep, ms(t));
    assert!(out.iter().all(|o| o.len() <= 88) && !out.is_empty());
}

#[test]
fn reused_buffers_carry_only_the_new_connections_bytes() {
    // A first connection fills both buffers (data out of order in, data
    // queued out); the next one, in the same memory, must see only its own.
    let c = cfg();
    let old = data(20_000);
    let mut a = established(&c);
    let r = IRS + 1;
    for k in [1u32, 3, 0, 2] {
        let s = seg(
            r + k * 1000,
            Some(ISS + 1),
            F::ACK,
            65535,
            &old[k as usize * 1000..][..1000],
        );
        a.input(&s, ms(1));
    }
    assert_eq!(a.send(&old), old.len());
    let _ = drain(&mut a, ms(1));
    let bufs = a.into_buffers();

    let new: Vec<u8> = data(9000).iter().map(|b| b ^ 0x5a).collect();
    let mut b = Endpoint::accept_reusing(&c, hs(&c), ms(2), bufs);
    assert_eq!(b.recv_peek().0.len(), 0, "nothing received yet");
    for k in [2u32, 0, 1, 4, 3] {
        let s = seg(
            r + k * 1000,
            Some(ISS + 1),
            F::ACK,
            65535,
            &new[k as usize * 1000..][..1000],
        );
        b.input(&s, ms(3));
    }
    let (x, y) = b.recv_peek();
    assert_eq!([x, y].concat(), new[..5000]);
    assert_eq!(b.send(&new[5000..]), 4000);
    let sent: Vec<u8> = drain(&mut b, ms(3))
        .into_iter()
        .flat_map(|o| o.payload)
        .collect();
    assert_eq!(
        sent,
        new[5000..],
        "only the bytes queued on this connection"
    );
}

#[test]
fn an_endpoint_at_rest_parks_its_buffers_and_keeps_its_windows() {
    let c = cfg();
    let mut a = established(&c);
    let r = IRS + 1;
    let d = data(3000);
    // Out of order data held: no parking.
    a.input(
        &seg(r + 1000, Some(ISS + 1), F::ACK, 65535, &d[1000..2000]),
        ms(1),
    );
    assert!(a.park().is_none(), "out-of-order bytes are held");
    a.input(&seg(r, Some(ISS + 1), F::ACK, 65535, &d[..1000]), ms(1));
    assert!(a.park().is_none(), "unread bytes are held");
    let (x, y) = a.recv_peek();
    let n = x.len() + y.len();
    assert_eq!(n, 2000);
    a.recv_consume(n);
    // Unacknowledged bytes queued: no parking.
    assert_eq!(a.send(&d[..500]), 500);
    let out = drain(&mut a, ms(2));
    assert!(a.park().is_none(), "unacknowledged bytes are held");
    let win_before = out.last().map(|o| o.window);
    a.input(&seg(r + 2000, Some(ISS + 501), F::ACK, 65535, &[]), ms(3));
    let bufs = a.park().expect("at rest: parked");
    assert!(a.is_parked() && !bufs.is_empty());
    assert!(a.park().is_none(), "parked once");
    // Parked, it still answers and advertises the same window.
    assert_eq!(a.send_room(), c.snd_buf);
    a.input(
        &seg(r + 2000, Some(ISS + 501), F::ACK, 65535, &d[2000..2100]),
        ms(4),
    );
    let (x, y) = a.recv_peek();
    assert_eq!(
        [x, y].concat(),
        d[2000..2100],
        "a write while parked is not lost"
    );
    a.recv_consume(100);
    let _ = drain(&mut a, ms(4));
    // Memory back, then data both ways as before.
    let again = a.park().expect("at rest again");
    a.unpark(bufs);
    drop(again);
    assert_eq!(a.send(&d[..700]), 700);
    let sent: Vec<u8> = drain(&mut a, ms(5))
        .into_iter()
        .flat_map(|o| o.payload)
        .collect();
    assert_eq!(sent, d[..700]);
    let win_after = a.park().map(|_| ()).is_none();
    assert!(win_after, "700 bytes unacknowledged: not at rest");
    assert!(win_before.is_some());
}
