//! End to end over AF_XDP ports (DPDK `net_af_xdp` on the DUT veths, XDP
//! sockets instead of af_packet's): one appliance with a spliced VIP and a
//! TLS-terminated VIP on the namespace topology — requests spread over the
//! backends, a download byte-exact, a `Connection: close` load with no
//! socket error, hostile segments counted and dropped, a TLS handshake
//! through the terminator with a verified certificate, and the ports
//! reported as af_xdp devices. The other single-lcore end-to-end suites run
//! on AF_XDP with `QSPLICE_E2E_PMD=af_xdp`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn lb_over_af_xdp() {
    if !require_root() {
        return;
    }
    assert!(
        std::path::Path::new("/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_af_xdp.so.23")
            .exists()
            || Command::new("sh")
                .args(["-c", "ldconfig -p | grep -q librte_net_af_xdp"])
                .status()
                .is_ok_and(|s| s.success()),
        "DPDK's net_af_xdp PMD (Debian librte-net-af-xdp23) is needed: scripts/setup.sh installs it"
    );
    let topo = Topology::up("qxd", 3);
    let scratch = Scratch::new("e2e-xdp");
    let o = Command::new(env!("CARGO_BIN_EXE_qsplice"))
        .args(["tls-cert", "--out"])
        .arg(scratch.0.join("certs"))
        .args(["--name", "vip.test", "--alg", "ecdsa-p256"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tls-cert: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(|b| format!("    {{ address = \"{b}:80\" }},"))
        .collect();
    let cfg = format!(
        r#"{base}
[management]
listen = "off"

[lb]
client_port = "client"
backend_port = "backend"
linger_ms = 500

[lb.health]
kind = "http"
http_path = "/"
interval_ms = 300
timeout_ms = 250

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
backends = [
{b}
]

[[lb.vips]]
name = "web-tls"
address = "10.10.1.1:443"
tls = "terminate"
backends = [
{b}
]

[lb.vips.tls_options]
certificates = [
    {{ cert = "{certs}/ecdsa-p256.pem", key = "{certs}/ecdsa-p256.key", names = ["vip.test"] }},
]
"#,
        base = demo_config_on(&topo, "", "af_xdp"),
        b = backends.join("\n"),
        certs = scratch.0.join("certs").display(),
    );
    assert!(cfg.contains("net_af_xdp0,iface="), "{cfg}");
    let cfg_path = scratch.0.join("xdp.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let (app, json) = spawn_lb(&scratch.0, &cfg_path);
    wait_vip0_healthy(&app, &json);
    let ns = topo.var("CLIENT_NS");

    // Spread over every backend.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..9 {
        seen.insert(
            curl_backend(&topo).unwrap_or_else(|| panic!("curl through the VIP\n{}", app.logs())),
        );
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // A download, byte-exact.
    let want = std::fs::read_to_string(topo.var("SHA256SUMS"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let (h, n) = l.split_once(char::is_whitespace)?;
            (n.trim().trim_start_matches('*') == "1m.bin").then(|| h.to_string())
        })
        .expect("1m.bin in SHA256SUMS");
    let file = scratch.0.join("1m.bin");
    let o = topo.exec(
        ns,
        &[
            "curl",
            "-s",
            "-m",
            "20",
            "-o",
            file.to_str().unwrap(),
            "http://10.10.1.1/1m.bin",
        ],
    );
    assert!(o.status.success(), "download: {:?}", o.status);
    assert_eq!(
        sha256_of_file(file.to_str().unwrap()),
        want,
        "download corrupted"
    );

    // Short connections under load: not one error.
    let o = topo.exec(
        ns,
        &[
            "wrk",
            "-t2",
            "-c32",
            "-d4s",
            "-H",
            "Connection: close",
            "http://10.10.1.1/",
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("requests in"), "{text}");
    assert!(
        !text.contains("Socket errors") && !text.contains("Non-2xx"),
        "{text}"
    );

    // A TLS handshake through the terminator, the certificate verified.
    let ca = scratch.0.join("certs").join("ca.pem");
    let o = topo.exec(
        ns,
        &[
            "curl",
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            "vip.test:443:10.10.1.1",
            "https://vip.test/",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "200",
        "HTTPS through the terminator"
    );

    // Malformed and forged segments: counted, dropped, still serving.
    hostile_segments(&topo, &json, &app, 80, true, || {
        curl_backend(&topo).is_some()
    });

    // The ports really are AF_XDP.
    let v = wait_for(Duration::from_secs(3), || stats(&json)).unwrap();
    let ports = v["ports"].as_array().expect("ports in the report");
    assert_eq!(ports.len(), 2, "{ports:?}");
    for p in ports {
        assert!(
            p["device"]
                .as_str()
                .is_some_and(|d| d.starts_with("net_af_xdp")),
            "{p}"
        );
        assert!(p["ipackets"].as_u64().unwrap_or(0) > 1000, "{p}");
    }
}
