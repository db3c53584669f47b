//! Per-core counters: plain `u64`s on the hot path, published to a
//! cache-aligned block of relaxed atomics that the control thread sums.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! drop_reasons {
    ($( $(#[$m:meta])* $name:ident = $text:literal, )*) => {
        /// Why a frame was dropped. Every drop is counted under one of these.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$m])* $name, )* }

        impl DropReason {
            /// All reasons, in counter order.
            pub const ALL: &'static [DropReason] = &[ $( DropReason::$name, )* ];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name, used in counter output.
            pub fn as_str(self) -> &'static str {
                match self { $( DropReason::$name => $text, )* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header (or its VLAN tags).
    EthTruncated = "eth_truncated",
    /// Unicast to another MAC (seen because the port is promiscuous).
    NotOurMac = "not_our_mac",
    /// Multicast frame we have no use for.
    L2Multicast = "l2_multicast",
    /// EtherType we do not handle.
    UnknownEthertype = "unknown_ethertype",
    /// IPv6 on a port without IPv6 addresses.
    Ipv6 = "ipv6",
    /// IPv6 header truncated.
    Ipv6Truncated = "ipv6_truncated",
    /// IP version field is not 6.
    Ipv6BadVersion = "ipv6_bad_version",
    /// Payload length beyond the frame.
    Ipv6BadPayloadLen = "ipv6_bad_payload_len",
    /// Source address multicast, or one of ours.
    Ipv6BadSource = "ipv6_bad_source",
    /// Destination neither ours, nor all-nodes, nor our solicited-node group.
    Ipv6NotForUs = "ipv6_not_for_us",
    /// An extension header runs past the payload.
    Ipv6ExtTruncated = "ipv6_ext_truncated",
    /// A Hop-by-Hop header that is not first.
    Ipv6ExtInvalid = "ipv6_ext_invalid",
    /// More extension headers than the walk follows (8).
    Ipv6ExtTooMany = "ipv6_ext_too_many",
    /// IPv6 fragment (reassembly is not supported).
    Ipv6Fragment = "ipv6_fragment",
    /// TCP, UDP or another protocol over IPv6 with no service.
    Ipv6NoService = "ipv6_no_service",
    /// ICMPv6 shorter than its message's fixed part.
    Icmpv6Truncated = "icmpv6_truncated",
    /// ICMPv6 checksum wrong.
    Icmpv6BadChecksum = "icmpv6_bad_checksum",
    /// ICMPv6 type we do not act on (echo replies, errors, echo behind
    /// extension headers or to a group).
    Icmpv6Unhandled = "icmpv6_unhandled",
    /// Router solicitations, advertisements and redirects (ignored).
    Icmpv6RouterIgnored = "icmpv6_router_ignored",
    /// A neighbor message that breaks RFC 4861 (hop limit not 255, bad
    /// code, multicast target, zero-length option, DAD to a unicast).
    NdpInvalid = "ndp_invalid",
    /// A neighbor solicitation for an address that is not ours.
    NdpNotForUs = "ndp_not_for_us",
    /// ARP shorter than its fixed 28 bytes.
    ArpTruncated = "arp_truncated",
    /// ARP for another hardware/protocol type.
    ArpUnsupported = "arp_unsupported",
    /// ARP asking for an address that is not ours.
    ArpNotForUs = "arp_not_for_us",
    /// ARP with a broadcast/multicast sender MAC or a bad opcode.
    ArpInvalid = "arp_invalid",
    /// IPv4 header truncated.
    Ipv4Truncated = "ipv4_truncated",
    /// IP version field is not 4.
    Ipv4BadVersion = "ipv4_bad_version",
    /// IHL < 5 or beyond the frame.
    Ipv4BadHeaderLen = "ipv4_bad_header_len",
    /// Total length shorter than the header or longer than the frame.
    Ipv4BadTotalLen = "ipv4_bad_total_len",
    /// IPv4 header checksum wrong.
    Ipv4BadChecksum = "ipv4_bad_checksum",
    /// Destination is not one of our addresses.
    Ipv4NotForUs = "ipv4_not_for_us",
    /// Fragment (reassembly is not supported).
    Ipv4Fragment = "ipv4_fragment",
    /// Source address is ours, multicast, broadcast or unspecified.
    Ipv4BadSource = "ipv4_bad_source",
    /// ICMP shorter than its header.
    IcmpTruncated = "icmp_truncated",
    /// ICMP checksum wrong.
    IcmpBadChecksum = "icmp_bad_checksum",
    /// ICMP type we do not answer.
    IcmpUnhandled = "icmp_unhandled",
    /// TCP to an address/port with no service.
    TcpNoService = "tcp_no_service",
    /// UDP to an address/port with no service.
    UdpNoService = "udp_no_service",
    /// IP protocol we do not handle.
    UnknownProtocol = "unknown_protocol",
    /// The device's tx queue was full and the frame could not be sent.
    TxFull = "tx_full",
    /// Frame too big for the reply buffer, or no mbuf for a generated frame.
    NoBuffer = "no_buffer",
}

macro_rules! counters {
    ($( $(#[$m:meta])* $name:ident, )*) => {
        /// One core's counters (plain integers: the owner's working copy,
        /// or a snapshot/sum read by the control thread).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$m])* pub $name: u64, )*
            /// Drops, indexed by `DropReason as usize`.
            pub drops: [u64; DropReason::COUNT],
        }

        /// The published copy of one core's counters, on its own cache lines.
        /// Written only by the owning lcore (relaxed stores), read by control.
        #[repr(align(64))]
        #[derive(Debug)]
        pub struct SharedCounters {
            $( $name: AtomicU64, )*
            drops: [AtomicU64; DropReason::COUNT],
        }

        impl Default for Counters {
            fn default() -> Self {
                Counters { $( $name: 0, )* drops: [0; DropReason::COUNT] }
            }
        }

        impl Default for SharedCounters {
            fn default() -> Self {
                SharedCounters {
                    $( $name: AtomicU64::new(0), )*
                    drops: std::array::from_fn(|_| AtomicU64::new(0)),
                }
            }
        }

        impl SharedCounters {
            /// Publish `c` (owner lcore only).
            pub fn publish(&self, c: &Counters) {
                $( self.$name.store(c.$name, Ordering::Relaxed); )*
                for (a, v) in self.drops.iter().zip(c.drops.iter()) {
                    a.store(*v, Ordering::Relaxed);
                }
            }
            /// Read the last published values.
            pub fn snapshot(&self) -> Counters {
                let mut c = Counters { $( $name: self.$name.load(Ordering::Relaxed), )* drops: [0; DropReason::COUNT] };
                for (v, a) in c.drops.iter_mut().zip(self.drops.iter()) {
                    *v = a.load(Ordering::Relaxed);
                }
                c
            }
        }

        impl Counters {
            /// Add `o` into `self` (aggregation over cores).
            pub fn add(&mut self, o: &Counters) {
                $( self.$name += o.$name; )*
                for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
                    *a += *b;
                }
            }
            /// Visit every non-drop counter by name, then every drop reason
            /// as `drop_<reason>`.
            pub fn for_each(&self, mut f: impl FnMut(&str, u64)) {
                $( f(stringify!($name), self.$name); )*
                for r in DropReason::ALL {
                    let mut name = [0u8; 64];
                    let s = concat_name(&mut name, "drop_", r.as_str());
                    f(s, self.drops[*r as usize]);
                }
            }
        }
    };
}

fn concat_name<'a>(buf: &'a mut [u8; 64], a: &str, b: &str) -> &'a str {
    let n = (a.len() + b.len()).min(64);
    let ab = a.bytes().chain(b.bytes());
    for (d, s) in buf.iter_mut().zip(ab) {
        *d = s;
    }
    std::str::from_utf8(&buf[..n]).unwrap_or("drop_?")
}

counters! {
    /// Frames received.
    rx_packets,
    /// Bytes received.
    rx_bytes,
    /// Frames handed to the device.
    tx_packets,
    /// Bytes handed to the device.
    tx_bytes,
    /// Rx polls made.
    polls,
    /// Rx polls that returned nothing on any port.
    idle_polls,
    /// ARP requests for our addresses answered.
    arp_requests_answered,
    /// ARP replies received.
    arp_replies_received,
    /// ARP requests we sent (resolution and refresh probes).
    arp_requests_sent,
    /// Gratuitous ARPs sent.
    arp_gratuitous_sent,
    /// ARP from another host claiming one of our addresses.
    arp_conflicts,
    /// Neighbour entries that became reachable or changed MAC.
    neigh_learned,
    /// Neighbour resolutions that gave up after max probes.
    neigh_failed,
    /// Neighbour inserts refused because the table was full.
    neigh_table_full,
    /// ICMP echo requests answered.
    icmp_echo_replied,
    /// ICMPv6 echo requests answered.
    icmpv6_echo_replied,
    /// Neighbor solicitations for our IPv6 addresses answered.
    ndp_solicits_answered,
    /// Unsolicited neighbor advertisements sent (at start).
    ndp_adverts_sent,
    /// Neighbor solicitations we sent (resolution and refresh probes).
    ndp_solicits_sent,
    /// Neighbor advertisements received.
    ndp_adverts_received,
    /// Another host advertising or probing (DAD) one of our IPv6 addresses.
    ndp_conflicts,
    /// Frames to our addresses the dataplane does not serve, handed to the
    /// port's kernel interface (the exception path: BGP, BFD, SSH, …).
    kernel_in,
    /// Frames the kernel interface sent, transmitted on its port.
    kernel_out,
    /// Frames for the kernel interface its queue refused.
    kernel_in_dropped,
    /// Frames for the kernel interface beyond `engine.kernel_max_pps`.
    kernel_in_limited,
}

impl Counters {
    /// Count a drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    /// A drop counter by reason.
    pub fn drops_of(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_snapshot_roundtrip_and_sum() {
        let mut c = Counters {
            rx_packets: 7,
            ..Default::default()
        };
        c.drop(DropReason::Ipv4BadChecksum);
        c.drop(DropReason::Ipv4BadChecksum);
        let s = SharedCounters::default();
        s.publish(&c);
        let snap = s.snapshot();
        assert_eq!(snap, c);
        let mut total = Counters::default();
        total.add(&snap);
        total.add(&snap);
        assert_eq!(total.rx_packets, 14);
        assert_eq!(total.drops_of(DropReason::Ipv4BadChecksum), 4);
        assert_eq!(total.total_drops(), 4);
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut names = Vec::new();
        Counters::default().for_each(|n, _| names.push(n.to_string()));
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len());
        assert!(names.contains(&"drop_ipv4_bad_checksum".to_string()));
        assert!(std::mem::align_of::<SharedCounters>() >= 64);
    }
}
