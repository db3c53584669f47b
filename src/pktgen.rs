//! `qsplice pktgen`: boot DPDK from the config, run the generator loop
//! (`qsplice_pktgen::lcore`) on the single worker lcore — TX on
//! `pktgen.tx_port`, RX on `pktgen.rx_port` — print live lines every stats
//! interval and a final report (text, `--json`, `--plot`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use qsplice_config::{
    parse_ip_range, parse_mac, parse_port_range, Config, PktgenConf, PktgenFields, PktgenProto,
    PktgenSizeMode,
};
use qsplice_dpdk::TscClock;
use qsplice_netdev::Clock;
use qsplice_pktgen::{
    rates, FieldMode, GenConfig, GenFinal, GenLoop, GenShared, Proto, Rate, SizeDist, StreamSpec,
};
use serde::Serialize;

use crate::outfile::write_json;
use crate::runtime::boot;

/// Options of `qsplice pktgen` (override the config).
#[derive(Clone, Debug, Default)]
pub struct PktgenOpts {
    /// Send for this long (overrides `pktgen.duration_ms`).
    pub duration: Option<Duration>,
    /// Send this many packets (overrides `pktgen.count`).
    pub count: Option<u64>,
    /// Rate in pps (overrides the config's rate; 0 = max).
    pub rate_pps: Option<u64>,
    /// Write the final report as JSON here.
    pub json: Option<PathBuf>,
    /// Write a latency histogram / CDF PNG here.
    pub plot: Option<PathBuf>,
}

fn port_index(cfg: &Config, name: &str) -> Result<usize> {
    cfg.ports
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| anyhow!("no port named {name}"))
}

/// Maps `[pktgen]` onto the crate's [`GenConfig`]; empty MACs become the
/// tx port's (source) and the rx port's (destination).
pub fn gen_config(
    g: &PktgenConf,
    opts: &PktgenOpts,
    tx_mac: [u8; 6],
    rx_mac: [u8; 6],
) -> Result<GenConfig> {
    let mut streams = Vec::new();
    for (i, s) in g.streams.iter().enumerate() {
        let k = |f: &str| format!("pktgen.streams[{i}].{f}");
        let mac = |v: &str, dflt: [u8; 6], f: &str| -> Result<[u8; 6]> {
            if v.is_empty() {
                Ok(dflt)
            } else {
                parse_mac(v).ok_or_else(|| anyhow!("{}: {v}", k(f)))
            }
        };
        streams.push(StreamSpec {
            id: i as u16,
            src_mac: mac(&s.src_mac, tx_mac, "src_mac")?,
            dst_mac: mac(&s.dst_mac, rx_mac, "dst_mac")?,
            vlan: (s.vlan != 0).then_some(s.vlan),
            src_ip: parse_ip_range(&s.src_ip).ok_or_else(|| anyhow!("{}", k("src_ip")))?,
            dst_ip: parse_ip_range(&s.dst_ip).ok_or_else(|| anyhow!("{}", k("dst_ip")))?,
            src_port: parse_port_range(&s.src_port).ok_or_else(|| anyhow!("{}", k("src_port")))?,
            dst_port: parse_port_range(&s.dst_port).ok_or_else(|| anyhow!("{}", k("dst_port")))?,
            proto: match s.proto {
                PktgenProto::Udp => Proto::Udp,
                PktgenProto::TcpSyn => Proto::TcpSyn,
            },
            ttl: s.ttl,
            mode: match s.fields {
                PktgenFields::Inc => FieldMode::Inc,
                PktgenFields::Random => FieldMode::Random,
            },
        });
    }
    let sizes = match g.size_mode {
        PktgenSizeMode::Fixed => SizeDist::Fixed(g.size),
        PktgenSizeMode::Range => SizeDist::Range(g.size_min, g.size_max),
        PktgenSizeMode::Imix => {
            SizeDist::Imix(g.imix.iter().map(|[s, w]| (*s as u16, *w)).collect())
        }
    };
    let rate = match opts.rate_pps {
        Some(0) => Rate::Max,
        Some(r) => Rate::Pps(r),
        None if g.rate_pps > 0 => Rate::Pps(g.rate_pps),
        None if g.rate_bps > 0 => Rate::L1Bps(g.rate_bps),
        None => Rate::Max,
    };
    Ok(GenConfig {
        streams,
        sizes,
        rate,
        count: opts.count.unwrap_or(g.count),
        duration_ms: opts
            .duration
            .map(|d| d.as_millis() as u64)
            .unwrap_or(g.duration_ms),
        burst: g.burst,
        drain_ms: g.drain_ms,
        seed: g.seed,
        receive: g.receive,
    })
}

/// Latency percentiles, µs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyReport {
    /// Samples.
    pub count: u64,
    /// Minimum.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
}

/// One direction's totals and rates.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirReport {
    /// Packets.
    pub pkts: u64,
    /// Bytes incl. FCS (L2).
    pub bytes: u64,
    /// Seconds from the first frame sent to the last frame of this direction.
    pub seconds: f64,
    /// Packets per second.
    pub pps: f64,
    /// L1 bit/s (frame + FCS + 20 B preamble/SFD/IFG).
    pub bps_l1: f64,
    /// L2 bit/s (frame + FCS).
    pub bps_l2: f64,
}

/// One stream's summary.
#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    /// Stream id.
    pub id: u16,
    /// Packets built and sent.
    pub sent: u64,
    /// Receive counters.
    #[serde(flatten)]
    pub rx: qsplice_pktgen::rx::StreamRxCounters,
    /// sent − unique received.
    pub lost: u64,
}

/// The final report of `qsplice pktgen` (also its `--json`).
#[derive(Clone, Debug, Serialize)]
pub struct PktgenReport {
    /// Target rate, as configured.
    pub target: String,
    /// Transmit side.
    pub tx: DirReport,
    /// Receive side (generator frames only).
    pub rx: DirReport,
    /// Packets sent and never received (sent − distinct received).
    pub lost: u64,
    /// `lost / sent`, percent.
    pub loss_pct: f64,
    /// Arrived after a later sequence number.
    pub reordered: u64,
    /// Received more than once.
    pub duplicated: u64,
    /// Older than the reorder window.
    pub late: u64,
    /// One-way latency (same-machine TSC).
    pub latency: LatencyReport,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// Frames the device refused at first (retried).
    pub tx_retries: u64,
    /// Frames raised to their stream's minimum size.
    pub size_clamped: u64,
    /// Frames received on the rx port that were not generator frames, by reason.
    pub rx_other: BTreeMap<&'static str, u64>,
    /// Stopped by a signal before count/duration.
    pub interrupted: bool,
}

fn latency(f: &GenFinal) -> LatencyReport {
    let h = &f.latency;
    if h.is_empty() {
        return LatencyReport::default();
    }
    let us = |v: u64| v as f64 / 1000.0;
    LatencyReport {
        count: h.len(),
        min_us: us(h.min()),
        mean_us: h.mean() / 1000.0,
        p50_us: us(h.value_at_quantile(0.5)),
        p95_us: us(h.value_at_quantile(0.95)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
    }
}

fn dir(pkts: u64, bytes: u64, cycles: u64, hz: u64) -> DirReport {
    let seconds = cycles as f64 / hz.max(1) as f64;
    // The interval between the first and the last of n frames holds n − 1
    // inter-frame gaps.
    let (pps, bps_l1, bps_l2) = if pkts > 1 {
        let (p, l1, l2) = rates(pkts, bytes, seconds);
        let k = (pkts - 1) as f64 / pkts as f64;
        (p * k, l1 * k, l2 * k)
    } else {
        (0.0, 0.0, 0.0)
    };
    DirReport {
        pkts,
        bytes,
        seconds,
        pps,
        bps_l1,
        bps_l2,
    }
}

fn report(f: &GenFinal, target: String) -> PktgenReport {
    let streams: Vec<StreamReport> = f
        .streams
        .iter()
        .enumerate()
        .map(|(i, (sent, rx))| StreamReport {
            id: i as u16,
            sent: *sent,
            rx: *rx,
            lost: sent.saturating_sub(rx.unique),
        })
        .collect();
    let unique: u64 = streams.iter().map(|s| s.rx.unique).sum();
    let lost = f.tx_pkts.saturating_sub(unique);
    let r = &f.rx;
    PktgenReport {
        target,
        tx: dir(f.tx_pkts, f.tx_bytes, f.tx_cycles, f.hz),
        rx: dir(r.pkts, r.bytes, f.rx_cycles, f.hz),
        lost,
        loss_pct: if f.tx_pkts > 0 {
            lost as f64 * 100.0 / f.tx_pkts as f64
        } else {
            0.0
        },
        reordered: streams.iter().map(|s| s.rx.reordered).sum(),
        duplicated: streams.iter().map(|s| s.rx.duplicated).sum(),
        late: streams.iter().map(|s| s.rx.late).sum(),
        latency: latency(f),
        streams,
        tx_retries: f.tx_retries,
        size_clamped: f.clamped,
        rx_other: [
            ("not_ipv4", r.not_ipv4),
            ("bad_ipv4", r.bad_ipv4),
            ("not_udp_tcp", r.not_udp_tcp),
            ("bad_l4", r.bad_l4),
            ("no_magic", r.no_magic),
            ("unknown_stream", r.unknown_stream),
            ("ts_future", r.ts_future),
        ]
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .collect(),
        interrupted: f.interrupted,
    }
}

fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.3} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.3} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.3} k", v / 1e3)
    } else {
        format!("{v:.1} ")
    }
}

/// Multi-line final report.
pub fn render(r: &PktgenReport) -> String {
    let mut s = format!(
        "pktgen ({}){}: tx {} pkts in {:.3}s = {}pps, {}bit/s L1, {}bit/s L2\n",
        r.target,
        if r.interrupted { " (interrupted)" } else { "" },
        r.tx.pkts,
        r.tx.seconds,
        si(r.tx.pps),
        si(r.tx.bps_l1),
        si(r.tx.bps_l2)
    );
    s += &format!(
        "  rx {} pkts = {}pps, {}bit/s L1, {}bit/s L2 | lost {} ({:.4}%) reordered {} duplicated {} late {}\n",
        r.rx.pkts,
        si(r.rx.pps),
        si(r.rx.bps_l1),
        si(r.rx.bps_l2),
        r.lost,
        r.loss_pct,
        r.reordered,
        r.duplicated,
        r.late
    );
    let l = &r.latency;
    s += &format!(
        "  latency (us) n={} min {:.1} mean {:.1} p50 {:.1} p95 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}\n",
        l.count, l.min_us, l.mean_us, l.p50_us, l.p95_us, l.p99_us, l.p999_us, l.max_us
    );
    for st in &r.streams {
        s += &format!(
            "  stream {}: sent {} received {} lost {} reordered {} duplicated {}\n",
            st.id, st.sent, st.rx.received, st.lost, st.rx.reordered, st.rx.duplicated
        );
    }
    s += &format!(
        "  tx retries {} size clamped {} rx other:",
        r.tx_retries, r.size_clamped
    );
    if r.rx_other.is_empty() {
        s += " none";
    }
    for (k, v) in &r.rx_other {
        s += &format!(" {k}={v}");
    }
    s
}

/// `qsplice pktgen`: generates until count/duration (or a signal), then
/// reports.
pub fn pktgen(cfg: &Config, opts: &PktgenOpts) -> Result<PktgenReport> {
    let g = cfg
        .pktgen
        .as_ref()
        .ok_or_else(|| anyhow!("no [pktgen] section"))?;
    let ti = port_index(cfg, &g.tx_port)?;
    let ri = if g.rx_port.is_empty() {
        ti
    } else {
        port_index(cfg, &g.rx_port)?
    };
    let mut b = boot(cfg)?;
    let lcore = cfg.eal.worker_lcores[0];
    let mut queues: Vec<Option<_>> = std::mem::take(&mut b.queues[0])
        .into_iter()
        .map(Some)
        .collect();
    let tx_q = queues[ti].take().ok_or_else(|| anyhow!("tx queue"))?;
    let rx_q = if ri == ti {
        None
    } else {
        Some(queues[ri].take().ok_or_else(|| anyhow!("rx queue"))?)
    };
    let tx_mac = qsplice_netdev::Queue::mac(&tx_q);
    let rx_mac = rx_q.as_ref().map_or(tx_mac, qsplice_netdev::Queue::mac);
    let gc = gen_config(g, opts, tx_mac, rx_mac)?;
    let target = match gc.rate {
        Rate::Max => "max rate".to_string(),
        Rate::Pps(p) => format!("{}pps", si(p as f64)),
        Rate::L1Bps(p) => format!("{}bit/s L1", si(p as f64)),
    };
    tracing::info!(streams = gc.streams.len(), rate = %target, count = gc.count, duration_ms = gc.duration_ms, "pktgen starting");
    let shared = Arc::new(GenShared::default());
    let stop = crate::runtime::install_signal_handler();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let (sh, ws, clock) = (shared.clone(), worker_stop.clone(), TscClock::new(b.eal));
    let hz = clock.hz();
    b.eal
        .launch(lcore, move || {
            let mut l = GenLoop::new(&gc, tx_q, rx_q, clock, sh);
            l.run(&ws);
            0
        })
        .with_context(|| format!("launch the generator on lcore {lcore}"))?;
    let started = Instant::now();
    let interval = Duration::from_millis(cfg.engine.stats_interval_ms.max(100));
    let mut next = started + interval;
    let mut last = (started, 0u64, 0u64, 0u64);
    loop {
        if shared.result.lock().map(|g| g.is_some()).unwrap_or(true) {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            worker_stop.store(true, Ordering::SeqCst);
        }
        let now = Instant::now();
        if cfg.engine.stats_interval_ms > 0 && now >= next {
            next += interval;
            let l = &shared.live;
            let (tp, tb, rp) = (
                l.tx_pkts.load(Ordering::Relaxed),
                l.tx_bytes.load(Ordering::Relaxed),
                l.rx_pkts.load(Ordering::Relaxed),
            );
            let dt = now.duration_since(last.0).as_secs_f64();
            let (pps, l1, _) = rates(tp - last.1, tb - last.2, dt);
            let (rpps, _, _) = rates(rp - last.3, 0, dt);
            last = (now, tp, tb, rp);
            println!(
                "pktgen {:.1}s tx {tp} ({}pps, {}bit/s L1) rx {rp} ({}pps) gap-lost {} reordered {} dup {} lat p50 {:.1}us p99 {:.1}us",
                now.duration_since(started).as_secs_f64(),
                si(pps),
                si(l1),
                si(rpps),
                l.gap_lost.load(Ordering::Relaxed),
                l.reordered.load(Ordering::Relaxed),
                l.duplicated.load(Ordering::Relaxed),
                l.lat_p50_ns.load(Ordering::Relaxed) as f64 / 1000.0,
                l.lat_p99_ns.load(Ordering::Relaxed) as f64 / 1000.0,
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    b.eal.wait(lcore);
    for p in &mut b.ports {
        p.stop();
    }
    let fin = shared
        .result
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .ok_or_else(|| anyhow!("the generator lcore ended without a result"))?;
    let _ = hz;
    let r = report(&fin, target);
    if let Some(p) = &opts.json {
        write_json(p, &r)?;
    }
    if let Some(p) = &opts.plot {
        qsplice_dhcp::plot::latency_png(p, &[("one-way latency", &fin.latency)])
            .map_err(|e| anyhow!("--plot {}: {e}", p.display()))?;
    }
    Ok(r)
}
