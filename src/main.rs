//! `qsplice`: command-line entry point. Parses arguments, loads and
//! validates the config, sets up logging, and hands over to the runtime.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use qsplice::{FwdBenchOpts, RunOpts};
use qsplice_engine::fwd::FwdMode;

/// qsplice: a DPDK user-space data-plane appliance — TCP-splicing load
/// balancer, post-quantum TLS terminator, packet generator, lab appliance.
#[derive(Parser, Debug)]
#[command(name = "qsplice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the appliance's L2/L3 presence on the configured ports: answer
    /// ARP for its addresses, resolve neighbours, answer ping; print counters.
    Run {
        /// Config file (TOML).
        #[arg(short, long, default_value = "conf/demo.toml")]
        config: PathBuf,
        /// Stop after this many seconds (default: run until Ctrl-C / SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the final counters as JSON to this file.
        #[arg(long)]
        stats_json: Option<PathBuf>,
        /// Rewrite --stats-json at every stats interval, not only at exit.
        #[arg(long)]
        live_json: bool,
    },
    /// Run the L4 load balancer of the config's `[lb]` section: TCP
    /// connections to each VIP are spread over its backends and spliced
    /// (plus everything `run` does).
    Lb {
        /// Config file (TOML) with an `[lb]` section.
        #[arg(short, long, default_value = "conf/lb.toml")]
        config: PathBuf,
        /// Stop after this many seconds (default: run until Ctrl-C / SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the final counters as JSON to this file.
        #[arg(long)]
        stats_json: Option<PathBuf>,
        /// Rewrite --stats-json at every stats interval, not only at exit.
        #[arg(long)]
        live_json: bool,
    },
    /// Operate a running appliance through its management listener
    /// (`[management] listen`): status, VIPs, backends, sessions, reload,
    /// drain / enable / disable / weight.
    Ctl {
        /// The listener's base URL.
        #[arg(long, default_value = "http://127.0.0.1:9180")]
        url: String,
        /// File holding the bearer token (`[management] token_file`);
        /// needed by the verbs that change something when the appliance
        /// asks for a token.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Print the API's JSON instead of tables.
        #[arg(long, global = true)]
        json: bool,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        #[command(subcommand)]
        verb: qsplice::ctl::CtlVerb,
    },
    /// Show the machine's NUMA topology and the planned lcore / queue /
    /// mempool placement for a config, with warnings.
    Topo {
        /// Config file to plan for (omit to show the machine only).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Lab certificates for terminated VIPs: a fresh CA (`ca.pem`) and one
    /// leaf per algorithm (`<alg>.pem`, `<alg>.key` with mode 0600) for the
    /// given names, valid from one hour ago for --days (CA: --ca-days).
    TlsCert {
        /// Output directory (created).
        #[arg(short, long)]
        out: PathBuf,
        /// DNS names of the leaves (the first is also the CN).
        #[arg(short, long, required = true)]
        name: Vec<String>,
        /// Key algorithms: ecdsa-p256, ecdsa-p384, ed25519, rsa2048,
        /// ml-dsa-44, ml-dsa-65, ml-dsa-87.
        #[arg(short, long, default_values_t = vec!["ecdsa-p256".to_string()])]
        alg: Vec<String>,
        /// Validity of the leaves, days (1..=3650), from one hour before
        /// now (clock skew).
        #[arg(long, default_value_t = qsplice_tls::certgen::DEFAULT_LEAF_DAYS)]
        days: u32,
        /// Validity of the CA, days (1..=7300, at least --days), from one
        /// hour before now.
        #[arg(long, default_value_t = qsplice_tls::certgen::DEFAULT_CA_DAYS)]
        ca_days: u32,
    },
    /// Parse and validate config files; print the first error of each.
    CheckConfig {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// DHCP server simulator on the `[dhcp_server]` port: pools, leases,
    /// Option 82 echo, fault simulation; live counters, final summary.
    DhcpServer {
        /// Config file (TOML) with a `[dhcp_server]` section.
        #[arg(short, long, default_value = "conf/dhcp-server.toml")]
        config: PathBuf,
        /// Stop after this many seconds (default: run until Ctrl-C / SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the counters as JSON to this file (at every stats interval
        /// and at exit).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// DHCP load tester: N virtual clients through DISCOVER/OFFER/REQUEST/ACK
    /// on the `[dhcp_tester]` port; live dashboard, final report. Exits
    /// non-zero when a client did not get a lease.
    DhcpTester {
        /// Config file (TOML) with a `[dhcp_tester]` section.
        #[arg(short, long, default_value = "conf/dhcp-tester.toml")]
        config: PathBuf,
        /// Give up after this many seconds (default: dhcp_tester.timeout_s).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the final report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a latency histogram + CDF as PNG to this file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Plain progress lines even when stdout is a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Packet generator on `[pktgen]`: templated UDP / TCP-SYN streams at a
    /// paced rate; loss, reordering and one-way latency measured on the
    /// receive port; live lines, final report.
    Pktgen {
        /// Config file (TOML) with a `[pktgen]` section.
        #[arg(short, long, default_value = "conf/pktgen.toml")]
        config: PathBuf,
        /// Send for this many seconds (overrides pktgen.duration_ms).
        #[arg(long)]
        duration: Option<f64>,
        /// Send this many packets (overrides pktgen.count).
        #[arg(long)]
        count: Option<u64>,
        /// Packets per second (overrides the config's rate; 0 = max).
        #[arg(long)]
        rate_pps: Option<u64>,
        /// Write the final report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a latency histogram + CDF as PNG to this file.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Stateful load generator on `[loadgen]`: HTTP/1.1 clients toward a
    /// server (or a server for clients) over the appliance's own TCP;
    /// live dashboard (lines when not a terminal), final report. Exits non-zero when a client run has
    /// failed connections or bad responses.
    Loadgen {
        /// Config file (TOML) with a `[loadgen]` section.
        #[arg(short, long, default_value = "conf/loadgen.toml")]
        config: PathBuf,
        /// Connections in all (overrides loadgen.connections).
        #[arg(long)]
        connections: Option<u64>,
        /// Run at most this many seconds (overrides loadgen.timeout_s).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the final report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a PNG time series of rates and latencies to this file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Plain progress lines even when stdout is a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Benchmark the engine's forwarding loop (use net_null ports).
    FwdBench {
        /// Config file (TOML), e.g. conf/null-bench.toml.
        #[arg(short, long, default_value = "conf/null-bench.toml")]
        config: PathBuf,
        /// Forwarding mode.
        #[arg(long, value_enum, default_value_t = Mode::Macswap)]
        mode: Mode,
        /// Seconds to measure.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Seconds of warm-up before measuring.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Mode {
    Io,
    Macswap,
}

fn init_logging(log: &qsplice_config::LogConf) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QSPLICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        qsplice_config::LogFormat::Json => b.json().try_init(),
        qsplice_config::LogFormat::Text => b
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

fn load(path: &std::path::Path) -> Result<qsplice_config::Config> {
    qsplice_config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qsplice: error: {e:#}");
            if e.downcast_ref::<qsplice::FanoutClash>().is_some() {
                return ExitCode::from(75); // EX_TEMPFAIL: a restart succeeds
            }
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run {
            config,
            duration,
            stats_json,
            live_json,
        } => {
            let cfg = load(&config)?;
            init_logging(&cfg.log);
            let opts = RunOpts {
                duration: duration.map(Duration::from_secs_f64),
                stats_json,
                live_json,
                config_path: Some(config.clone()),
            };
            let report = qsplice::run(&cfg, &opts)?;
            println!("{}", report.render());
            Ok(())
        }
        Cmd::Lb {
            config,
            duration,
            stats_json,
            live_json,
        } => {
            let cfg = load(&config)?;
            if cfg.lb.is_none() {
                anyhow::bail!(
                    "{}: no [lb] section: `qsplice lb` needs VIPs and backends (see docs/config.md)",
                    config.display()
                );
            }
            init_logging(&cfg.log);
            let opts = RunOpts {
                duration: duration.map(Duration::from_secs_f64),
                stats_json,
                live_json,
                config_path: Some(config.clone()),
            };
            let report = qsplice::run(&cfg, &opts)?;
            println!("{}", report.render());
            Ok(())
        }
        Cmd::Ctl {
            url,
            token_file,
            json,
            timeout,
            verb,
        } => {
            let opts = qsplice::ctl::CtlOpts {
                url,
                token_file,
                json,
                timeout: Duration::from_secs_f64(timeout.clamp(0.1, 3600.0)),
            };
            let out = qsplice::ctl::run(&opts, &verb)?;
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        Cmd::DhcpServer {
            config,
            duration,
            json,
        } => {
            let cfg = load(&config)?;
            if cfg.dhcp_server.is_none() {
                anyhow::bail!(
                    "{}: no [dhcp_server] section (see docs/config.md)",
                    config.display()
                );
            }
            init_logging(&cfg.log);
            let opts = qsplice::dhcp::DhcpOpts {
                duration: duration.map(Duration::from_secs_f64),
                json,
                ..Default::default()
            };
            let r = qsplice::dhcp::server(&cfg, &opts)?;
            println!("{}", qsplice::dhcp::render_server(&r));
            Ok(())
        }
        Cmd::DhcpTester {
            config,
            duration,
            json,
            plot,
            plain,
        } => {
            let cfg = load(&config)?;
            if cfg.dhcp_tester.is_none() {
                anyhow::bail!(
                    "{}: no [dhcp_tester] section (see docs/config.md)",
                    config.display()
                );
            }
            init_logging(&cfg.log);
            let opts = qsplice::dhcp::DhcpOpts {
                duration: duration.map(Duration::from_secs_f64),
                json,
                plot,
                plain,
            };
            let r = qsplice::dhcp::tester(&cfg, &opts)?;
            println!("{}", qsplice::dhcp::render_tester(&r));
            qsplice::dhcp::check_tester(&r)
        }
        Cmd::Pktgen {
            config,
            duration,
            count,
            rate_pps,
            json,
            plot,
        } => {
            let cfg = load(&config)?;
            if cfg.pktgen.is_none() {
                anyhow::bail!(
                    "{}: no [pktgen] section (see docs/config.md)",
                    config.display()
                );
            }
            init_logging(&cfg.log);
            let opts = qsplice::pktgen::PktgenOpts {
                duration: duration.map(Duration::from_secs_f64),
                count,
                rate_pps,
                json,
                plot,
            };
            let r = qsplice::pktgen::pktgen(&cfg, &opts)?;
            println!("{}", qsplice::pktgen::render(&r));
            Ok(())
        }
        Cmd::Loadgen {
            config,
            connections,
            duration,
            json,
            plot,
            plain,
        } => {
            let cfg = load(&config)?;
            if cfg.loadgen.is_none() {
                anyhow::bail!(
                    "{}: no [loadgen] section (see docs/config.md)",
                    config.display()
                );
            }
            init_logging(&cfg.log);
            let opts = qsplice::loadgen::LoadgenOpts {
                connections,
                duration: duration.map(Duration::from_secs_f64),
                json,
                plot,
                plain,
            };
            let r = qsplice::loadgen::loadgen(&cfg, &opts)?;
            println!("{}", qsplice::loadgen::render(&r));
            if r.role != "server" && (r.failed > 0 || r.bad_responses > 0 || r.timed_out) {
                anyhow::bail!(
                    "{} connection(s) failed, {} bad response(s){}",
                    r.failed,
                    r.bad_responses,
                    if r.timed_out { ", timed out" } else { "" }
                );
            }
            Ok(())
        }
        Cmd::Topo { config } => {
            let topo = qsplice_topo::Topology::detect().context("reading the machine topology")?;
            println!("{}", topo.render_machine());
            if let Some(path) = config {
                let cfg = load(&path)?;
                println!("{}", qsplice_topo::plan(&topo, &cfg));
            }
            Ok(())
        }
        Cmd::TlsCert {
            out,
            name,
            alg,
            days,
            ca_days,
        } => {
            use qsplice_tls::certgen::{write_lab_set, KeyAlg, LabSetOpts};
            let algs = alg
                .iter()
                .map(|a| a.parse::<KeyAlg>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let opts = LabSetOpts {
                names: name,
                algs,
                days,
                ca_days,
            };
            for p in write_lab_set(&out, &opts).map_err(anyhow::Error::msg)? {
                println!("{}", p.display());
            }
            Ok(())
        }
        Cmd::CheckConfig { files } => {
            let mut bad = 0;
            for f in &files {
                match qsplice_config::load(f) {
                    Ok(_) => println!("{}: ok", f.display()),
                    Err(e) => {
                        println!("{e}");
                        bad += 1;
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!("{bad} of {} config files invalid", files.len());
            }
            Ok(())
        }
        Cmd::FwdBench {
            config,
            mode,
            seconds,
            warmup,
            json,
        } => {
            let cfg = load(&config)?;
            init_logging(&cfg.log);
            let mode = match mode {
                Mode::Io => FwdMode::Io,
                Mode::Macswap => FwdMode::MacSwap,
            };
            let r = qsplice::fwd_bench(
                &cfg,
                &FwdBenchOpts {
                    mode,
                    seconds,
                    warmup,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "qsplice fwd {}: {:.2} Mpps total, {:.2} Mpps/lcore on {} lcore(s), tx_full {}",
                    r.mode,
                    r.pps / 1e6,
                    r.mpps_per_lcore,
                    r.lcores,
                    r.tx_full
                );
            }
            Ok(())
        }
    }
}
