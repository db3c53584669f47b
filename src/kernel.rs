//! The exception path's kernel side: give a port's kernel interface (the
//! `net_tap` device DPDK created) the port's addresses and bring it up, so
//! the kernel's own services (a routing daemon, sshd) run on them.

use std::process::Command;

use anyhow::{bail, Context, Result};
use qsplice_config::PortConf;

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("running `ip {}` (iproute2)", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn guard_table(dev_iface: &str) -> String {
    let clean: String = dev_iface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("qsplice_guard_{clean}")
}

/// An af_packet port shares its interface with the kernel's own stack,
/// which sees every frame the port receives. Once the kernel interface
/// holds the port's addresses, that stack would answer them too (a second
/// echo reply, a RST to every VIP SYN). A netdev ingress hook that drops
/// everything keeps the stack out: packet sockets (af_packet) receive
/// before the hook, so the port still sees every frame. Replaces a table
/// left by an earlier run.
fn guard(dev_iface: &str) -> Result<()> {
    let t = guard_table(dev_iface);
    let _ = Command::new("nft")
        .args(["delete", "table", "netdev", &t])
        .output();
    let rule = format!(
        "table netdev {t} {{\n  chain in {{\n    type filter hook ingress device \"{dev_iface}\" priority -500; policy drop;\n  }}\n}}\n"
    );
    let out = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            if let Some(mut i) = c.stdin.take() {
                i.write_all(rule.as_bytes())?;
            }
            c.wait_with_output()
        })
        .context("running nft (nftables) to keep the kernel stack off the af_packet interface")?;
    if !out.status.success() {
        bail!(
            "nft: {} (the kernel stack on `{dev_iface}` would answer the port's addresses too)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Remove what [`configure`] added outside the kernel interface (which
/// disappears with the process): the af_packet guard. At exit.
pub(crate) fn cleanup(p: &PortConf) {
    if let (Some(_), Some(dev)) = (&p.kernel_iface, af_packet_iface(p)) {
        let _ = Command::new("nft")
            .args(["delete", "table", "netdev", &guard_table(dev)])
            .output();
    }
}

fn af_packet_iface(p: &PortConf) -> Option<&str> {
    if p.dev_name().starts_with("net_af_packet") {
        p.iface()
    } else {
        None
    }
}

/// Configure `iface` for port `p`: its MTU and addresses (replacing any
/// left from an earlier run), IPv6 off (the dataplane answers NDP and
/// ICMPv6 echo for the port's IPv6 addresses itself and hands no IPv6 to
/// the kernel yet: it would only send router solicitations),
/// link up. Control thread, at start.
pub(crate) fn configure(iface: &str, p: &PortConf) -> Result<()> {
    ip(&["link", "set", "dev", iface, "mtu", &p.mtu.to_string()])?;
    ip(&["-4", "addr", "flush", "dev", iface])?;
    for a in &p.addresses {
        ip(&["addr", "add", &a.to_string(), "dev", iface])?;
    }
    let v6 = format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6");
    if std::path::Path::new(&v6).exists() {
        if let Err(e) = std::fs::write(&v6, "1") {
            tracing::warn!(iface, "cannot turn IPv6 off on the kernel interface: {e}");
        }
    }
    if let Some(dev) = af_packet_iface(p) {
        guard(dev)?;
    }
    ip(&["link", "set", "dev", iface, "up"])?;
    Ok(())
}
