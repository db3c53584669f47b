//! Transfers through the simulated network (see `common`): byte-exact
//! delivery, orderly close, and loss recovery that does not stall on RTOs.
//!
//! Numbers are printed (`cargo test -p qsplice-tcp --release --test sim --
//! --nocapture`).

mod common;

use common::{run, LinkCfg, Report, Scenario};
use qsplice_tcp::{Config, Congestion};

const MIB: u64 = 1 << 20;
const GBIT: u64 = 1_000_000_000;

/// 1 ms RTT at 1 Gbit/s.
fn path(rate: u64) -> (LinkCfg, LinkCfg) {
    (LinkCfg::new(500, rate), LinkCfg::new(500, rate))
}

fn show(name: &str, bytes: u64, r: &Report) {
    eprintln!(
        "{name:>28}: {:>7.1} Mbit/s in {:>8.1} ms | lost data segs {:>4} (+{} other) | server: \
         rtx {:>4} fast-rec {:>3} rto {:>2} tlp {:>2} dupacks {:>5} srtt {:>5} us cwnd {:>7} | \
         client: ooo {:>4} dsacks-rx-at-server {}",
        r.mbit_s(bytes),
        r.done_us.unwrap_or(0) as f64 / 1000.0,
        r.fwd.lost_data,
        r.fwd.lost - r.fwd.lost_data + r.rev.lost,
        r.server.retransmits,
        r.server.fast_retransmits,
        r.server.rto_timeouts,
        r.server.tlp_probes,
        r.server.dup_acks,
        r.server.srtt_us,
        r.server.cwnd,
        r.client.ooo_segments,
        r.server.dsacks_rx,
    );
}

fn check_complete(name: &str, s: &Scenario, r: &Report) {
    show(name, s.bytes, r);
    assert_eq!(r.received, s.bytes, "{name}: response incomplete: {r:#?}");
    assert_eq!(r.request_received, s.request, "{name}: request incomplete");
    assert!(r.both_closed(), "{name}: not closed: {r:#?}");
    assert_eq!(r.client_outcome, None, "{name}");
    assert_eq!(r.server_outcome, None, "{name}");
}

fn lossless(rate: u64, cfg: &Config) -> Report {
    let (f, b) = path(rate);
    let mut s = Scenario::new(20 * MIB, f, b, 1);
    s.server = cfg.clone();
    s.client = cfg.clone();
    let r = run(&s);
    check_complete("lossless", &s, &r);
    r
}

/// 20 MiB with 1 % random loss on the data path: completes, RTOs are rare
/// compared with the losses, and throughput is a sane fraction of the
/// lossless run.
fn lossy(name: &str, rate: u64, cfg: &Config, tweak: impl Fn(&mut Scenario)) -> (Report, Report) {
    let base = lossless(rate, cfg);
    let (mut f, b) = path(rate);
    f.loss = 0.01;
    let mut s = Scenario::new(20 * MIB, f, b, 7);
    s.server = cfg.clone();
    s.client = cfg.clone();
    tweak(&mut s);
    let r = run(&s);
    check_complete(name, &s, &r);
    let lost = r.fwd.lost_data.max(1);
    assert!(r.fwd.lost_data > 50, "{name}: the loss model is off");
    assert!(
        r.server.rto_timeouts * 10 <= lost,
        "{name}: {} RTOs for {lost} lost segments",
        r.server.rto_timeouts
    );
    (base, r)
}

#[test]
fn lossless_transfer_fills_the_link() {
    let r = lossless(GBIT, &Config::default());
    assert_eq!(r.server.retransmits, 0);
    assert_eq!(r.server.rto_timeouts, 0);
    // 20 MiB at 1 Gbit/s is 168 ms of serialisation (+ headers, slow start).
    assert!(r.mbit_s(20 * MIB) > 800.0, "{}", r.mbit_s(20 * MIB));
    // Segments never exceed the MSS plus the headers (20 + 12 TS).
    assert!(r.max_seg_len <= 1460 + 20, "{}", r.max_seg_len);
}

#[test]
fn one_percent_loss_sack_100mbit() {
    let (base, r) = lossy("1% loss SACK 100M", 100_000_000, &Config::default(), |_| {});
    assert!(r.server.sack_recoveries > 0);
    assert!(
        r.mbit_s(20 * MIB) >= 0.3 * base.mbit_s(20 * MIB),
        "{} vs {}",
        r.mbit_s(20 * MIB),
        base.mbit_s(20 * MIB)
    );
}

#[test]
fn one_percent_loss_sack_1gbit() {
    let (base, r) = lossy("1% loss SACK 1G", GBIT, &Config::default(), |_| {});
    // At 1 ms RTT and 1 % loss the Mathis bound (MSS/RTT · 1.22/√p) is
    // ~140 Mbit/s for any Reno-like TCP; what matters is that no RTO stall
    // dominates (asserted in `lossy`) and the rate is of that order.
    assert!(
        r.mbit_s(20 * MIB) >= 0.1 * base.mbit_s(20 * MIB),
        "{}",
        r.mbit_s(20 * MIB)
    );
}

#[test]
fn one_percent_loss_without_sack() {
    let cfg = Config {
        sack: false,
        ..Config::default()
    };
    let (base, r) = lossy("1% loss no SACK 100M", 100_000_000, &cfg, |_| {});
    assert_eq!(r.server.sack_recoveries, 0);
    assert!(r.server.fast_retransmits > 0);
    assert!(r.mbit_s(20 * MIB) >= 0.3 * base.mbit_s(20 * MIB));
}

#[test]
fn one_percent_loss_newreno() {
    let cfg = Config {
        congestion: Congestion::NewReno,
        ..Config::default()
    };
    let (base, r) = lossy("1% loss NewReno 100M", 100_000_000, &cfg, |_| {});
    assert!(r.mbit_s(20 * MIB) >= 0.3 * base.mbit_s(20 * MIB));
}

#[test]
fn loss_on_the_ack_path_too() {
    let (base, r) = lossy(
        "1% loss both ways 100M",
        100_000_000,
        &Config::default(),
        |s| s.rev.loss = 0.01,
    );
    assert!(r.rev.lost > 0);
    assert!(r.mbit_s(20 * MIB) >= 0.3 * base.mbit_s(20 * MIB));
}

#[test]
fn loss_with_reordering() {
    let (base, r) = lossy(
        "1% loss + jitter 100M",
        100_000_000,
        &Config::default(),
        |s| {
            s.fwd.jitter_us = 200;
            s.rev.jitter_us = 100;
        },
    );
    assert!(r.client.ooo_segments > r.fwd.lost_data);
    assert!(r.mbit_s(20 * MIB) >= 0.3 * base.mbit_s(20 * MIB));
}

#[test]
fn loss_with_duplication() {
    let (base, r) = lossy(
        "1% loss + 1% dup 100M",
        100_000_000,
        &Config::default(),
        |s| {
            s.fwd.dup = 0.01;
            s.rev.dup = 0.01;
        },
    );
    assert!(r.fwd.dups > 0);
    assert!(
        r.server.dsacks_rx > 0,
        "duplicates are reported with D-SACK"
    );
    assert!(r.mbit_s(20 * MIB) >= 0.3 * base.mbit_s(20 * MIB));
}

#[test]
fn small_receive_buffer_and_slow_reader() {
    // A 16 KiB receive buffer read 3000 bytes at a time: window updates,
    // zero windows and persist probes, still byte-exact.
    let (f, b) = path(GBIT);
    let mut s = Scenario::new(2 * MIB, f, b, 3);
    s.client.rcv_buf = 16 * 1024;
    s.client_read_chunk = 3000;
    let r = run(&s);
    check_complete("small rcv_buf, slow reader", &s, &r);
}

#[test]
fn tail_loss_probe_helps_short_responses() {
    // 300 responses of 15 KB (11 segments) over a 10 ms RTT path with 3 %
    // loss: a lost tail segment costs an RTO (≥ 200 ms) without TLP, about
    // 2·SRTT with it.
    let run_all = |tlp: bool| {
        let (mut rtos, mut probes, mut total_us) = (0, 0, 0);
        for seed in 0..300 {
            let (mut f, b) = (LinkCfg::new(5_000, GBIT), LinkCfg::new(5_000, GBIT));
            f.loss = 0.03;
            let mut s = Scenario::new(15_000, f, b, seed);
            s.server.tlp = tlp;
            let r = run(&s);
            assert_eq!(r.received, 15_000);
            assert!(r.both_closed());
            rtos += r.server.rto_timeouts;
            probes += r.server.tlp_probes;
            total_us += r.done_us.unwrap();
        }
        eprintln!(
            "short responses, TLP {tlp}: {rtos} RTOs, {probes} probes, mean completion {:.1} ms",
            total_us as f64 / 300.0 / 1000.0
        );
        (rtos, total_us)
    };
    let (rto_off, t_off) = run_all(false);
    let (rto_on, t_on) = run_all(true);
    assert!(rto_on * 2 < rto_off, "{rto_on} vs {rto_off}");
    assert!(t_on < t_off, "{t_on} vs {t_off}");
}

/// The TLS-terminating path of the load balancer as measured end to end:
/// our client leg (mss 1460, 64 KiB receive / 128 KiB send buffers, window
/// shift 7, CUBIC, no TIME-WAIT; `output` run when a segment arrives or at
/// the lcore's 1 ms timer ticks) sending to a Linux-like receiver (our
/// endpoint: an ACK every second full segment, at once with SACK blocks for
/// out-of-order data and hole fills, D-SACK for duplicates) over a 1 Gbit/s
/// path of `rtt_us`, with `loss` on data segments and on ACKs alike.
fn lb_client_leg(bytes: u64, rtt_us: u64, loss: f64, seed: u64) -> Scenario {
    lb_client_leg_cc(bytes, rtt_us, loss, seed, Congestion::Cubic)
}

fn lb_client_leg_cc(bytes: u64, rtt_us: u64, loss: f64, seed: u64, cc: Congestion) -> Scenario {
    let (mut f, mut b) = (
        LinkCfg::new(rtt_us / 2, GBIT),
        LinkCfg::new(rtt_us / 2, GBIT),
    );
    f.loss = loss;
    b.loss = loss;
    let mut s = Scenario::new(bytes, f, b, seed);
    s.server = Config {
        mss: 1460,
        rcv_buf: 64 * 1024,
        snd_buf: 128 * 1024,
        ws_local: Some(7),
        congestion: cc,
        time_wait_us: 0,
        ..Config::default()
    };
    s.client = Config {
        rcv_buf: 6 << 20,
        ..Config::default()
    };
    s.server_tick_us = 1000;
    s
}

fn show_lb(name: &str, s: &Scenario, r: &Report) {
    check_complete(name, s, r);
    eprintln!(
        "{name:>28}  wire rtx {} spurious {} | lost data {} lost acks {} | client acks sent {} | \
         recovery probes {}",
        r.srv_rtx_segs,
        r.spurious_rtx,
        r.fwd.lost_data,
        r.rev.lost,
        r.rev.sent,
        r.server.recovery_probes,
    );
}

/// The lossless rate and the worst of three 1 %-loss runs (Mbit/s); the
/// retransmissions, spurious ones and RTOs of the lossy runs, summed.
fn lb_leg_runs(bytes: u64, rtt_us: u64) -> (f64, f64, u64, u64, u64) {
    let s0 = lb_client_leg(bytes, rtt_us, 0.0, 11);
    let base = run(&s0);
    show_lb("lb leg lossless", &s0, &base);
    let (mut worst, mut rtx, mut spurious, mut rtos) = (f64::MAX, 0, 0, 0);
    // SEEDS=1,2,3 runs other seeds.
    let seeds: Vec<u64> = std::env::var("SEEDS")
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|_| vec![21, 22, 23]);
    for seed in seeds {
        let s = lb_client_leg(bytes, rtt_us, 0.01, seed);
        let r = run(&s);
        show_lb("lb leg 1% both ways", &s, &r);
        assert!(
            r.fwd.lost_data > 100 && r.rev.lost > 50,
            "the loss model is off"
        );
        worst = worst.min(r.mbit_s(bytes));
        rtx += r.srv_rtx_segs;
        spurious += r.spurious_rtx;
        rtos += r.server.rto_timeouts;
    }
    let b = base.mbit_s(bytes);
    eprintln!(
        "lb leg, RTT {rtt_us} us: lossless {b:.1} Mbit/s, 1% worst {worst:.1} Mbit/s \
         ({:.2}x); rtx {rtx} spurious {spurious} rtos {rtos}",
        worst / b
    );
    (b, worst, rtx, spurious, rtos)
}

/// 1 % loss both ways at 0.2 ms RTT: at least half the lossless rate, few
/// spurious retransmissions, no RTO stalls. (Before the fixes: NextSeg rule
/// 3 resent whole windows of in-flight data once the 128 KiB send buffer
/// was all sent — up to half the retransmissions spurious — and every lost
/// retransmission waited for a 200 ms RTO.)
#[test]
fn lb_client_leg_one_percent_loss_both_ways() {
    let (base, worst, rtx, spurious, rtos) = lb_leg_runs(30 * MIB, 200);
    assert!(worst >= 0.5 * base, "{worst} vs {base}");
    assert!(spurious * 10 <= rtx, "{spurious} spurious of {rtx}");
    assert!(rtos <= 1, "{rtos} RTOs");
}

/// At 0.5 ms RTT any AIMD sender is bounded by loss, not by the link:
/// Mathis et al., MSS/RTT · 1.22/√p ≈ 283 Mbit/s at 1 % (CUBIC's
/// Reno-friendly region, α = 0.53 / β = 0.7, gives the same √(α(1+β) /
/// (2(1−β)p)) = 12.2 segments per RTT). Recovery must cost nothing more:
/// at least 80 % of that bound (0.19x of lossless before the fixes, with
/// 2–5 RTOs a run).
#[test]
fn lb_client_leg_half_ms_rtt_reaches_the_aimd_bound() {
    let rtt_us = 500;
    let (_, worst, rtx, spurious, rtos) = lb_leg_runs(30 * MIB, rtt_us);
    let bound = 1448.0 * 8.0 / rtt_us as f64 * 1.22 / 0.01f64.sqrt();
    assert!(worst >= 0.8 * bound, "{worst} Mbit/s vs bound {bound:.1}");
    assert!(spurious * 10 <= rtx, "{spurious} spurious of {rtx}");
    assert!(rtos <= 1, "{rtos} RTOs");
}

/// BBR on the LB client leg: random loss is not congestion, so 1 % loss
/// both ways at 0.5 ms RTT keeps most of the lossless rate — several times
/// the AIMD bound CUBIC is held to (`lb_client_leg_half_ms_rtt_...`).
#[test]
fn lb_client_leg_bbr_ignores_random_loss() {
    let rtt_us = 500;
    let s0 = lb_client_leg_cc(30 * MIB, rtt_us, 0.0, 11, Congestion::Bbr);
    let base = run(&s0);
    show_lb("bbr lossless", &s0, &base);
    let b = base.mbit_s(30 * MIB);
    let aimd = 1448.0 * 8.0 / rtt_us as f64 * 1.22 / 0.01f64.sqrt();
    let mut rtos = 0;
    for seed in [21, 22, 23] {
        let s = lb_client_leg_cc(30 * MIB, rtt_us, 0.01, seed, Congestion::Bbr);
        let r = run(&s);
        show_lb("bbr 1% both ways", &s, &r);
        let m = r.mbit_s(30 * MIB);
        eprintln!(
            "bbr: lossless {b:.1} Mbit/s, 1% {m:.1} Mbit/s ({:.2}x), AIMD bound {aimd:.1}",
            m / b
        );
        assert!(m >= 0.6 * b, "{m} vs lossless {b}");
        assert!(m >= 2.0 * aimd, "{m} vs the AIMD bound {aimd}");
        assert!(
            r.spurious_rtx * 10 <= r.srv_rtx_segs,
            "{} spurious of {}",
            r.spurious_rtx,
            r.srv_rtx_segs
        );
        rtos += r.server.rto_timeouts;
    }
    assert!(rtos <= 1, "{rtos} RTOs");
}
