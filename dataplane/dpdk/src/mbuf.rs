//! Mempools and owned mbufs.

use std::ffi::CString;
use std::ptr::NonNull;

use qsplice_dpdk_sys as sys;

use crate::{DpdkError, Eal};

/// `RTE_MBUF_F_RX_RSS_HASH`: the rx path filled `hash.rss`.
const RX_RSS_HASH: u64 = 1 << 1;

/// A DPDK packet-buffer pool on one NUMA socket.
///
/// Pools are never freed (see the crate's soundness model); the handle is a
/// cheap `Copy` pointer that may be shared between lcores (DPDK mempools are
/// multi-producer/multi-consumer safe, with a per-lcore cache).
#[derive(Clone, Copy, Debug)]
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: rte_mempool get/put operations are thread-safe (MPMC ring plus
// per-lcore caches); the pool itself is never freed.
unsafe impl Send for Mempool {}
// SAFETY: as above: all operations we expose are MT-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Create a packet mbuf pool of `n` mbufs with a per-lcore cache of
    /// `cache` and `data_room` bytes per buffer (including the 128 B
    /// headroom), on `socket` (`None`: any socket).
    pub fn create(
        _eal: &Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: Option<u32>,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::new("rte_pktmbuf_pool_create", 22, "name contains NUL"))?;
        let socket_id = socket.map(|s| s as i32).unwrap_or(-1); // SOCKET_ID_ANY
                                                                // SAFETY: EAL is initialised (we hold &Eal); the name is a valid C
                                                                // string copied by DPDK.
        let p = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket_id)
        };
        NonNull::new(p).map(|ptr| Mempool { ptr }).ok_or_else(|| {
            DpdkError::from_rte_errno(
                "rte_pktmbuf_pool_create",
                format!("{name}: {n} mbufs of {data_room} B, cache {cache}, socket {socket_id}"),
            )
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Allocate one mbuf (length 0), or `None` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the life of the process.
        let m = unsafe { sys::qs_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(Mbuf)
    }

    /// Allocate `n` mbufs in one call (clamped to `out`'s spare capacity),
    /// appending them to `out`. All or nothing: returns `n`, or 0 when the
    /// pool has fewer free.
    #[inline]
    pub fn alloc_bulk<const N: usize>(
        &self,
        out: &mut arrayvec::ArrayVec<Mbuf, N>,
        n: usize,
    ) -> usize {
        let len = out.len();
        let n = n.min(N - len).min(u32::MAX as usize);
        if n == 0 {
            return 0;
        }
        // SAFETY: `Mbuf` is repr(transparent) over NonNull<rte_mbuf>, so the
        // spare capacity of `out` is an array of at least `n` pointer slots.
        // rte_pktmbuf_alloc_bulk either fills all `n` with valid, owned,
        // non-null mbufs and returns 0 (then the length is extended by
        // exactly `n`), or writes nothing usable and returns non-zero (then
        // the length is left alone). The pool is valid for the process.
        unsafe {
            let slots = out.as_mut_ptr().add(len) as *mut *mut sys::rte_mbuf;
            if sys::qs_pktmbuf_alloc_bulk(self.ptr.as_ptr(), slots, n as u32) != 0 {
                return 0;
            }
            out.set_len(len + n);
        }
        n
    }

    /// Mbufs currently free in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid; this only reads counters.
        unsafe { sys::qs_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently allocated from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid; this only reads counters.
        unsafe { sys::qs_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Total mbufs in the pool.
    pub fn size(&self) -> u32 {
        // SAFETY: the pool is valid; `size` is set at creation and never changes.
        unsafe { (*self.ptr.as_ptr()).size }
    }
}

/// An owned, single-segment packet buffer. Dropping it returns it to its
/// pool; [`crate::EthQueue::tx_burst`] hands it to the device.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is uniquely owned (no aliasing handle exists), and freeing
// it from any lcore is allowed (mempools are MT-safe).
unsafe impl Send for Mbuf {}

impl Mbuf {
    #[inline(always)]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for our lifetime.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own a valid mbuf uniquely for our lifetime.
        unsafe { self.0.as_mut() }
    }

    /// Frame length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    /// True when the mbuf holds no data.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes free before the data.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    /// Bytes free after the data.
    #[inline(always)]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: for a single-segment mbuf, buf_addr + data_off points to
        // data_len initialised bytes inside the buffer, which we own.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The frame bytes, mutable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (addr, off, len) = (
            m.buf_addr as *mut u8,
            m.data_off as usize,
            m.data_len as usize,
        );
        // SAFETY: as in `data`, and we own the mbuf uniquely (&mut self).
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }

    /// Set the frame length to `len` bytes, growing into the tailroom or
    /// shrinking. Returns false (and changes nothing) if it does not fit.
    /// Grown bytes keep whatever the buffer held (they are not zeroed).
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        let m = self.raw_mut();
        if len > m.buf_len as usize - m.data_off as usize {
            return false;
        }
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        true
    }

    /// Remove `n` bytes from the front (e.g. strip a header). False if `n > len`.
    pub fn adj(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > m.data_len as usize {
            return false;
        }
        m.data_off += n as u16;
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }

    /// Add `n` bytes in front of the data (e.g. push a VLAN tag) from the
    /// headroom. False if the headroom is too small.
    pub fn prepend(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > m.data_off as usize {
            return false;
        }
        m.data_off -= n as u16;
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        true
    }

    /// The RSS hash the NIC computed, if any.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & RX_RSS_HASH != 0 {
            // SAFETY: reading a u32 out of a union of plain integer structs is
            // always defined; the flag says the rx path wrote `rss`.
            Some(unsafe { m.__bindgen_anon_2.hash.rss })
        } else {
            None
        }
    }

    /// Start loading the first cache line of the frame data (the headers).
    #[inline(always)]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let m = self.raw();
            let p = (m.buf_addr as *const u8).wrapping_add(m.data_off as usize);
            // SAFETY: PREFETCHT0 is a hint that never faults, whatever the
            // address; SSE is baseline on x86_64.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    p as *const i8,
                )
            }
        }
    }

    /// The port the mbuf was received on.
    pub fn port(&self) -> u16 {
        self.raw().port
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once, here.
        unsafe { sys::qs_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl AsRef<[u8]> for Mbuf {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl AsMut<[u8]> for Mbuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
}

impl qsplice_netdev::Frame for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline(always)]
    fn len(&self) -> usize {
        Mbuf::len(self)
    }
    #[inline(always)]
    fn set_len(&mut self, len: usize) -> bool {
        Mbuf::set_len(self, len)
    }
    #[inline(always)]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    #[inline(always)]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    #[inline(always)]
    fn rss_hash(&self) -> Option<u32> {
        Mbuf::rss_hash(self)
    }
    #[inline(always)]
    fn prefetch(&self) {
        Mbuf::prefetch(self)
    }
}
