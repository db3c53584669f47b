//! DPDK rings carrying mbufs between lcores.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use arrayvec::ArrayVec;
use qsplice_dpdk_sys as sys;

use crate::{DpdkError, Eal, Mbuf};

const RING_F_SP_ENQ: u32 = 0x0001;
const RING_F_SC_DEQ: u32 = 0x0002;

/// A bounded lock-free ring of mbufs. Single-producer/single-consumer when
/// created with `spsc = true` (then exactly one thread may enqueue and one
/// dequeue: enforced by splitting into [`Ring`] handles only through `&mut`).
#[derive(Debug)]
pub struct Ring {
    ptr: NonNull<sys::rte_ring>,
}

// SAFETY: rte_ring operations are thread-safe for the producer/consumer
// modes it was created with; handles require &mut for enqueue/dequeue so one
// handle is never used by two threads at once.
unsafe impl Send for Ring {}

impl Ring {
    /// Create a multi-producer/multi-consumer ring with room for `count - 1`
    /// mbufs (`count` a power of two).
    pub fn create(
        _eal: &Eal,
        name: &str,
        count: u32,
        socket: Option<u32>,
    ) -> Result<Ring, DpdkError> {
        Self::create_flags(name, count, socket, 0)
    }

    /// Create a single-producer/single-consumer ring.
    pub fn create_spsc(
        _eal: &Eal,
        name: &str,
        count: u32,
        socket: Option<u32>,
    ) -> Result<Ring, DpdkError> {
        Self::create_flags(name, count, socket, RING_F_SP_ENQ | RING_F_SC_DEQ)
    }

    fn create_flags(
        name: &str,
        count: u32,
        socket: Option<u32>,
        flags: u32,
    ) -> Result<Ring, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::new("rte_ring_create", 22, "name contains NUL"))?;
        let s = socket.map(|s| s as i32).unwrap_or(-1);
        // SAFETY: valid name; EAL initialised (callers hold &Eal).
        let p = unsafe { sys::rte_ring_create(cname.as_ptr(), count, s, flags) };
        NonNull::new(p).map(|ptr| Ring { ptr }).ok_or_else(|| {
            DpdkError::from_rte_errno("rte_ring_create", format!("{name}, {count} slots"))
        })
    }

    /// Enqueue mbufs from the front of `pkts`; enqueued ones are removed,
    /// the rest stay. Returns the number enqueued.
    pub fn enqueue_burst<const N: usize>(&mut self, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
        let len = pkts.len();
        // SAFETY: same ownership transfer as EthQueue::tx_burst: the ring now
        // owns the first `n` mbufs; the rest are moved to the front.
        unsafe {
            let p = pkts.as_mut_ptr();
            let n =
                sys::qs_ring_enqueue_burst(self.ptr.as_ptr(), p as *const *mut c_void, len as u32)
                    as usize;
            if n > 0 {
                std::ptr::copy(p.add(n), p, len - n);
                pkts.set_len(len - n);
            }
            n
        }
    }

    /// Dequeue up to the free capacity of `out`.
    pub fn dequeue_burst<const N: usize>(&mut self, out: &mut ArrayVec<Mbuf, N>) -> usize {
        let len = out.len();
        // SAFETY: the ring only ever holds owned mbufs we enqueued; they are
        // written into the spare capacity of `out` and the length extended by
        // exactly the number written.
        unsafe {
            let slots = out.as_mut_ptr().add(len) as *mut *mut c_void;
            let n = sys::qs_ring_dequeue_burst(self.ptr.as_ptr(), slots, (N - len) as u32) as usize;
            out.set_len(len + n);
            n
        }
    }

    /// Entries currently in the ring.
    pub fn len(&self) -> usize {
        // SAFETY: ring valid; reads indices only.
        unsafe { sys::qs_ring_count(self.ptr.as_ptr()) as usize }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ring {
    /// Two Ethernet ports wired back to back through two rings (DPDK's
    /// `net_ring` PMD, `rte_eth_from_rings`): what one transmits, the
    /// other receives, in process, one queue pair each. Returns their port
    /// ids (named `{name}_a` and `{name}_b`), to be configured like any
    /// port ([`crate::EthPort::configure`] with one queue). The rings live
    /// as long as the process: the ports keep pointers to them.
    pub fn port_pair(
        eal: &Eal,
        name: &str,
        slots: u32,
        socket: Option<u32>,
    ) -> Result<(u16, u16), DpdkError> {
        let ra = Ring::create_spsc(eal, &format!("{name}_ab"), slots, socket)?;
        let rb = Ring::create_spsc(eal, &format!("{name}_ba"), slots, socket)?;
        let (ab, ba) = (ra.ptr.as_ptr(), rb.ptr.as_ptr());
        // Never freed from here on (before any port points at them; a
        // failure below leaks two rings, nothing dangles).
        std::mem::forget(ra);
        std::mem::forget(rb);
        let numa = socket.unwrap_or(0);
        let port = |side: &str, rx: *mut sys::rte_ring, tx: *mut sys::rte_ring| {
            let n = format!("{name}_{side}");
            let cname = CString::new(n.clone())
                .map_err(|_| DpdkError::new("rte_eth_from_rings", 22, "name contains NUL"))?;
            let (rxq, txq) = ([rx], [tx]);
            // SAFETY: valid C string; one-element arrays of valid ring
            // pointers, read during the call; the rings are never freed, so
            // the port's pointers stay valid.
            let id = unsafe {
                sys::rte_eth_from_rings(cname.as_ptr(), rxq.as_ptr(), 1, txq.as_ptr(), 1, numa)
            };
            u16::try_from(id).map_err(|_| DpdkError::from_rte_errno("rte_eth_from_rings", n))
        };
        let a = port("a", ba, ab)?;
        let b = port("b", ab, ba)?;
        Ok((a, b))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut out: ArrayVec<Mbuf, 64> = ArrayVec::new();
        while self.dequeue_burst(&mut out) > 0 {
            out.clear(); // frees the mbufs
        }
        // SAFETY: the ring is empty and no other handle exists.
        unsafe { sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}
