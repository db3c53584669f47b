//! A pre-flight check for `net_af_packet` ports.
//!
//! DPDK 22.11's af_packet PMD joins each queue's socket to a
//! `PACKET_FANOUT` group whose 16-bit id is `(getpid() ^ ifindex) & 0xffff`
//! (`rte_eth_af_packet.c`). Fanout ids are per network namespace: when
//! another process in the same namespace already owns that id for another
//! interface (`pid' ^ ifindex' == pid ^ ifindex`), the kernel refuses the
//! join with `EINVAL` and EAL fails with "could not set PACKET_FANOUT …
//! Invalid argument", which says nothing about the cause. Two DPDK processes
//! on one host (two appliances, a test rig and its device under test) meet
//! this by chance. [`af_packet_fanout_clash`] asks the kernel the same
//! question before EAL does, so the caller can say what happened.

use std::ffi::CString;

/// The fanout argument DPDK 22.11 uses for `ifindex` in process `pid`:
/// id in the low 16 bits, `PACKET_FANOUT_HASH | FLAG_DEFRAG | FLAG_ROLLOVER`
/// in the high 16.
pub fn af_packet_fanout_arg(pid: u32, ifindex: u32) -> u32 {
    let id = (pid ^ ifindex) & 0xffff;
    let flags = libc::PACKET_FANOUT_HASH
        | libc::PACKET_FANOUT_FLAG_DEFRAG
        | libc::PACKET_FANOUT_FLAG_ROLLOVER;
    id | (flags << 16)
}

/// `Some(group id)` when the af_packet PMD would fail to join its fanout
/// group on `iface` in this process because the id is taken in this network
/// namespace by a group on another interface (or with other flags). `None`
/// when the join would succeed, and also when the check cannot be made (no
/// such interface, no `CAP_NET_RAW`): EAL then reports that itself.
pub fn af_packet_fanout_clash(iface: &str) -> Option<u16> {
    let name = CString::new(iface).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return None;
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        return None;
    }
    // A socket on an interface that is down never joins a group (EINVAL
    // too); that is not the clash, and EAL says so itself.
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `fd` is our open socket; `ifr` is a valid ifreq with a
    // NUL-terminated name (zeroed, and `iface` is shorter than IFNAMSIZ since
    // if_nametoindex found it).
    let up = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) } == 0
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        && unsafe { ifr.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short != 0;
    if !up {
        // SAFETY: `fd` is ours and not used after this.
        unsafe { libc::close(fd) };
        return None;
    }
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `fd` is our open socket; `sll` is a valid sockaddr_ll and the
    // length passed is its size.
    let bound = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    let arg = af_packet_fanout_arg(std::process::id(), ifindex);
    let clash = if bound == 0 {
        // SAFETY: `fd` is our open, bound socket; `arg` is a u32 that lives
        // across the call and its size is passed.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&arg as *const u32).cast(),
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
    } else {
        false
    };
    // SAFETY: `fd` is ours and not used after this; closing it leaves the
    // group (which disappears with its last member).
    unsafe { libc::close(fd) };
    clash.then_some((arg & 0xffff) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_id_is_pid_xor_ifindex() {
        let a = af_packet_fanout_arg(0x1234_5678, 7);
        assert_eq!(a & 0xffff, (0x5678 ^ 7) & 0xffff);
        assert_eq!(a >> 16, 0x8000 | 0x1000); // HASH 0, DEFRAG 0x8000, ROLLOVER 0x1000
                                              // The clash this module exists for: another pid, another interface, one id.
        assert_eq!(
            af_packet_fanout_arg(100, 3) & 0xffff,
            af_packet_fanout_arg(100 ^ 3 ^ 5, 5) & 0xffff
        );
    }

    /// A packet socket on `ifindex` joined to fanout `arg` (-1 on failure).
    fn join(ifindex: u32, arg: u32) -> i32 {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: test helper; plain socket/bind/setsockopt calls on our own
        // descriptor with correctly sized arguments.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
            assert!(fd >= 0, "AF_PACKET socket (root needed)");
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let b = libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            assert_eq!(b, 0);
            let r = libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&arg as *const u32).cast(),
                4,
            );
            assert_eq!(r, 0, "join {arg:#x}");
            fd
        }
    }

    fn ifindex(name: &str) -> u32 {
        let c = CString::new(name).unwrap();
        // SAFETY: valid NUL-terminated name.
        unsafe { libc::if_nametoindex(c.as_ptr()) }
    }

    #[test]
    fn a_group_taken_on_another_interface_is_seen_before_eal() {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if !root {
            eprintln!("skipped: needs root (creates a veth pair)");
            return;
        }
        let dev = format!("qsfan{}", std::process::id() % 100_000);
        let ip = |a: &[&str]| {
            std::process::Command::new("ip")
                .args(a)
                .status()
                .is_ok_and(|s| s.success())
        };
        let peer = format!("{dev}p");
        assert!(
            ip(&["link", "add", &dev, "type", "veth", "peer", "name", &peer]),
            "ip link add {dev}"
        );
        struct Gone(String);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = std::process::Command::new("ip")
                    .args(["link", "del", &self.0])
                    .status();
            }
        }
        let _gone = Gone(dev.clone());
        // Down: no verdict (EAL reports a down interface itself).
        assert_eq!(af_packet_fanout_clash(&dev), None);
        assert!(ip(&["link", "set", &dev, "up"]));
        assert_eq!(af_packet_fanout_clash(&dev), None, "a free id");
        // Another process's group that happens to have our id, on `lo`.
        let ours = af_packet_fanout_arg(std::process::id(), ifindex(&dev));
        let fd = join(ifindex("lo"), ours);
        assert_eq!(af_packet_fanout_clash(&dev), Some((ours & 0xffff) as u16));
        // SAFETY: our descriptor from `join`.
        unsafe { libc::close(fd) };
        assert_eq!(af_packet_fanout_clash(&dev), None, "free again");
    }

    #[test]
    fn no_interface_means_no_verdict() {
        assert_eq!(af_packet_fanout_clash("qs-no-such-if"), None);
    }
}
