//! Ethernet ports (ethdev) and their rx/tx queue pairs.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use arrayvec::ArrayVec;
use qsplice_dpdk_sys as sys;
use qsplice_netdev::{Burst, Queue};

use crate::error::check;
use crate::{DpdkError, Eal, Mbuf, Mempool};

// RSS hash functions (RTE_ETH_RSS_*; function-like macros bindgen cannot see).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
const RSS_NONFRAG_IPV6_OTHER: u64 = 1 << 13;
/// What qsplice asks RSS to hash on: IPv4 and IPv6 addresses and L4 ports
/// (an IPv6 client's segments must spread over the queues like an IPv4
/// one's, and stay on one queue per flow).
const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_NONFRAG_IPV4_OTHER
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP
    | RSS_NONFRAG_IPV6_OTHER;
/// RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: all mbufs of a tx queue come from one
/// pool and have refcount 1, so the driver can free them in bulk.
const TX_OFFLOAD_MBUF_FAST_FREE: u64 = 1 << 16;

/// The symmetric RSS key (0x6d5a repeated) commonly used with Toeplitz: it
/// hashes (a,b) and (b,a) alike, keeping both directions of a flow on one
/// queue. Exposed so software can compute the same hash.
pub const RSS_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// How to configure a port.
#[derive(Clone, Debug)]
pub struct PortConf {
    /// Number of rx/tx queue pairs (one per worker lcore).
    pub queues: u16,
    /// Descriptors per rx queue (adjusted to the PMD's limits).
    pub rx_desc: u16,
    /// Descriptors per tx queue (adjusted to the PMD's limits).
    pub tx_desc: u16,
    /// MTU to set (ignored with a warning in `PortInfo` if the PMD refuses).
    pub mtu: u16,
    /// Enable promiscuous mode.
    pub promiscuous: bool,
    /// Request RSS over the queues (only applied if the PMD supports it).
    pub rss: bool,
    /// Set this MAC address before starting (`None`: keep the device's).
    /// On a `net_tap` device it is also the kernel interface's address.
    pub mac: Option<[u8; 6]>,
}

/// What was learned about a port while configuring it.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// DPDK port id.
    pub port_id: u16,
    /// Device name, e.g. `net_af_packet0`.
    pub name: String,
    /// PMD name, e.g. `net_af_packet`.
    pub driver: String,
    /// MAC address.
    pub mac: [u8; 6],
    /// NUMA socket (`None`: any / unknown, typical for virtual devices).
    pub socket: Option<u32>,
    /// RSS hash functions actually enabled (0: no RSS).
    pub rss_hf: u64,
    /// Descriptors per rx/tx queue after adjusting to the PMD's limits.
    pub rx_desc: u16,
    /// Descriptors per tx queue after adjusting.
    pub tx_desc: u16,
    /// Whether setting the MTU succeeded.
    pub mtu_set: bool,
    /// Maximum queues the PMD supports.
    pub max_queues: u16,
}

/// Port counters from `rte_eth_stats_get`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because rx queues were full.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Rx mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s (0 if unknown).
    pub speed_mbps: u32,
}

/// A configured, started ethdev port. Owned by the control thread; its
/// queues are handed out once, one [`EthQueue`] per lcore.
#[derive(Debug)]
pub struct EthPort {
    info: PortInfo,
    queues: Vec<EthQueue>,
    started: bool,
}

fn c_name(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: DPDK returns NUL-terminated strings owned by the device.
    unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() }
}

impl EthPort {
    /// Find the port id of a device by name (`net_null0`, `0000:03:00.0`...).
    pub fn id_by_name(_eal: &Eal, name: &str) -> Result<u16, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::new("rte_eth_dev_get_port_by_name", 22, name))?;
        let mut id = 0u16;
        // SAFETY: valid C string and out-pointer.
        let r = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        check(r, "rte_eth_dev_get_port_by_name", || {
            format!("no ethdev named {name:?} (is the vdev/PCI device in the EAL arguments?)")
        })?;
        Ok(id)
    }

    /// Number of ports DPDK probed.
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: EAL initialised.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// Configure port `port_id` with `conf.queues` rx/tx queue pairs, each rx
    /// queue filling from `pools[q]` (one pool per queue, normally the pool of
    /// the polling lcore's NUMA node), and start it.
    pub fn configure(
        eal: &Eal,
        port_id: u16,
        conf: &PortConf,
        pools: &[Mempool],
    ) -> Result<EthPort, DpdkError> {
        let ctx = |what: &str| format!("port {port_id}: {what}");
        if conf.queues == 0 || pools.len() != conf.queues as usize {
            return Err(DpdkError::new(
                "EthPort::configure",
                22,
                ctx("need one mempool per queue and at least one queue"),
            ));
        }
        let _ = eal;
        let mut dev_info = sys::rte_eth_dev_info::default();
        // SAFETY: valid out-pointer; port_id validity is checked by DPDK.
        let r = unsafe { sys::rte_eth_dev_info_get(port_id, &mut dev_info) };
        check(r, "rte_eth_dev_info_get", || ctx("info"))?;
        let max_queues = dev_info.max_rx_queues.min(dev_info.max_tx_queues);
        if conf.queues > max_queues {
            return Err(DpdkError::new(
                "EthPort::configure",
                22,
                ctx(&format!(
                    "{} queues requested, the PMD supports {max_queues}",
                    conf.queues
                )),
            ));
        }
        let mut name_buf = [0 as std::ffi::c_char; 64];
        // SAFETY: the buffer is RTE_ETH_NAME_MAX_LEN (64) bytes as required.
        unsafe { sys::rte_eth_dev_get_name_by_port(port_id, name_buf.as_mut_ptr()) };
        let name = c_name(name_buf.as_ptr());
        let driver = c_name(dev_info.driver_name);

        let mut eth_conf = sys::rte_eth_conf::default();
        let rss_hf = if conf.rss && conf.queues > 1 {
            RSS_WANTED & dev_info.flow_type_rss_offloads
        } else {
            0
        };
        let mut key = RSS_KEY;
        if rss_hf != 0 {
            eth_conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            eth_conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if dev_info.hash_key_size as usize == key.len() {
                eth_conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                eth_conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            }
        }
        if dev_info.tx_offload_capa & TX_OFFLOAD_MBUF_FAST_FREE != 0 {
            eth_conf.txmode.offloads |= TX_OFFLOAD_MBUF_FAST_FREE;
        }
        // SAFETY: eth_conf is fully initialised and (with the key buffer) lives
        // across the call; DPDK copies the key.
        let r = unsafe { sys::rte_eth_dev_configure(port_id, conf.queues, conf.queues, &eth_conf) };
        check(r, "rte_eth_dev_configure", || {
            ctx(&format!("{name} ({driver}), {} queues", conf.queues))
        })?;

        let (mut rx_desc, mut tx_desc) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid out-pointers.
        let r =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &mut rx_desc, &mut tx_desc) };
        check(r, "rte_eth_dev_adjust_nb_rx_tx_desc", || ctx("descriptors"))?;

        // SAFETY: port id is valid (configure succeeded).
        let sock = unsafe { sys::rte_eth_dev_socket_id(port_id) };
        let socket = (sock >= 0).then_some(sock as u32);
        let sock_arg = if sock < 0 { u32::MAX } else { sock as u32 }; // SOCKET_ID_ANY

        for q in 0..conf.queues {
            // SAFETY: pool pointer is valid forever; NULL rx_conf = PMD defaults.
            let r = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port_id,
                    q,
                    rx_desc,
                    sock_arg,
                    std::ptr::null(),
                    pools[q as usize].as_ptr(),
                )
            };
            check(r, "rte_eth_rx_queue_setup", || {
                ctx(&format!("rx queue {q}, {rx_desc} descriptors"))
            })?;
            let mut txconf = dev_info.default_txconf;
            txconf.offloads = eth_conf.txmode.offloads;
            // SAFETY: txconf is a valid, initialised struct copied by DPDK.
            let r = unsafe { sys::rte_eth_tx_queue_setup(port_id, q, tx_desc, sock_arg, &txconf) };
            check(r, "rte_eth_tx_queue_setup", || {
                ctx(&format!("tx queue {q}, {tx_desc} descriptors"))
            })?;
        }
        if let Some(m) = conf.mac {
            let mut addr = sys::rte_ether_addr { addr_bytes: m };
            // SAFETY: port id valid (configured); DPDK copies the address.
            let r = unsafe { sys::rte_eth_dev_default_mac_addr_set(port_id, &mut addr) };
            check(r, "rte_eth_dev_default_mac_addr_set", || ctx(&name))?;
        }
        // SAFETY: port id valid. A PMD that cannot change the MTU (veth via
        // af_packet follows the kernel interface) is not an error.
        let mtu_set = unsafe { sys::rte_eth_dev_set_mtu(port_id, conf.mtu) } == 0;
        // SAFETY: port configured with all queues set up.
        let r = unsafe { sys::rte_eth_dev_start(port_id) };
        check(r, "rte_eth_dev_start", || ctx(&name))?;
        if conf.promiscuous {
            // SAFETY: port id valid and started.
            unsafe { sys::rte_eth_promiscuous_enable(port_id) };
        }
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: valid out-pointer.
        let r = unsafe { sys::rte_eth_macaddr_get(port_id, &mut mac) };
        check(r, "rte_eth_macaddr_get", || ctx(&name))?;

        let info = PortInfo {
            port_id,
            name,
            driver,
            mac: mac.addr_bytes,
            socket,
            rss_hf,
            rx_desc,
            tx_desc,
            mtu_set,
            max_queues,
        };
        let queues = (0..conf.queues)
            .map(|q| EthQueue {
                port_id,
                queue_id: q,
                pool: pools[q as usize],
                mac: info.mac,
            })
            .collect();
        Ok(EthPort {
            info,
            queues,
            started: true,
        })
    }

    /// What was configured.
    pub fn info(&self) -> &PortInfo {
        &self.info
    }

    /// Hand out the queue pairs (once): queue `i` is for worker `i`.
    pub fn take_queues(&mut self) -> Vec<EthQueue> {
        std::mem::take(&mut self.queues)
    }

    /// Device counters.
    pub fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer; stats_get is safe to call concurrently
        // with rx/tx on other threads.
        unsafe { sys::rte_eth_stats_get(self.info.port_id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Link state without waiting.
    pub fn link(&self) -> LinkStatus {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.info.port_id, &mut l) };
        LinkStatus {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
        }
    }

    /// Stop the port. Call only after every lcore using its queues has
    /// stopped (the queues' owners have returned).
    pub fn stop(&mut self) {
        if self.started {
            // SAFETY: port id valid; callers stop lcores first (documented).
            unsafe { sys::rte_eth_dev_stop(self.info.port_id) };
            self.started = false;
        }
    }
}

/// One rx/tx queue pair of a started port, owned by one lcore.
#[derive(Debug)]
pub struct EthQueue {
    port_id: u16,
    queue_id: u16,
    pool: Mempool,
    mac: [u8; 6],
}

impl EthQueue {
    /// Use `mac` as this queue's address (what the engine answers ARP
    /// with and sends from): for PMDs whose ports have none and cannot be
    /// given one (a `net_ring` pair's ports read 00:00:00:00:00:00 and
    /// refuse `rte_eth_dev_default_mac_addr_set`; they deliver every frame).
    pub fn with_mac(mut self, mac: [u8; 6]) -> EthQueue {
        self.mac = mac;
        self
    }

    /// Port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }
    /// Queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue_id
    }
    /// The pool rx buffers (and `alloc`) come from.
    pub fn pool(&self) -> Mempool {
        self.pool
    }

    /// Receive up to `max` mbufs into the free space of `out`.
    #[inline(always)]
    pub fn rx_burst<const N: usize>(&mut self, out: &mut ArrayVec<Mbuf, N>, max: usize) -> usize {
        let len = out.len();
        let room = (N - len).min(max).min(u16::MAX as usize) as u16;
        if room == 0 {
            return 0;
        }
        // SAFETY: `Mbuf` is repr(transparent) over NonNull<rte_mbuf>, so the
        // spare capacity of `out` is an array of `room` pointer slots; DPDK
        // writes `n <= room` valid, owned, non-null mbuf pointers there, and
        // we then extend the length by exactly `n`. This queue is used by one
        // thread only (EthQueue is !Sync and not Clone).
        unsafe {
            let slots = out.as_mut_ptr().add(len) as *mut *mut sys::rte_mbuf;
            let n = sys::qs_rx_burst(self.port_id, self.queue_id, slots, room) as usize;
            out.set_len(len + n);
            n
        }
    }

    /// Send mbufs from the front of `pkts`; sent ones are removed (the device
    /// owns them), unsent ones stay, in order. Returns the number sent.
    #[inline(always)]
    pub fn tx_burst<const N: usize>(&mut self, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
        let len = pkts.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: the first `len` slots hold owned mbufs (repr(transparent)
        // pointers). DPDK takes ownership of the first `n`; we then move the
        // `len - n` unsent ones to the front and shrink the length to that, so
        // no mbuf is dropped twice or leaked.
        unsafe {
            let p = pkts.as_mut_ptr();
            let n = sys::qs_tx_burst(
                self.port_id,
                self.queue_id,
                p as *mut *mut sys::rte_mbuf,
                len.min(u16::MAX as usize) as u16,
            ) as usize;
            if n > 0 {
                std::ptr::copy(p.add(n), p, len - n);
                pkts.set_len(len - n);
            }
            n
        }
    }
}

impl Queue for EthQueue {
    type Frame = Mbuf;
    #[inline(always)]
    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        EthQueue::rx_burst(self, out, max)
    }
    #[inline(always)]
    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        EthQueue::tx_burst(self, pkts)
    }
    #[inline]
    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }
    #[inline]
    fn alloc_bulk(&mut self, out: &mut Burst<Mbuf>, n: usize) -> usize {
        match self.pool.alloc_bulk(out, n) {
            0 => {
                // Fewer free than asked: take what there is one by one.
                let mut k = 0;
                while k < n && !out.is_full() {
                    match self.pool.alloc() {
                        Some(m) => out.push(m),
                        None => break,
                    }
                    k += 1;
                }
                k
            }
            k => k,
        }
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
}

#[allow(dead_code)]
fn _assert_layout() {
    // Mbuf must be pointer-sized for the burst transmutes above.
    const _: () = assert!(std::mem::size_of::<Mbuf>() == std::mem::size_of::<*mut sys::rte_mbuf>());
    const _: () = assert!(
        std::mem::size_of::<Option<Mbuf>>() == std::mem::size_of::<NonNull<sys::rte_mbuf>>()
    );
}
