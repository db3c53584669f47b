//! A fixed-capacity byte ring, allocated once.
//!
//! An empty ring can give its memory back (`park`) and take memory again
//! before it is next written (`unpark`; a write to a parked ring allocates
//! as a fallback): a connection at rest holds no buffer.
//!
//! Offsets are relative to the oldest byte (`head`). The send buffer keeps
//! `len` queued bytes (the byte at offset 0 has sequence number `snd_base`);
//! the receive buffer keeps `len` in-order bytes and writes out-of-order data
//! past them with [`Ring::write_at`] without changing `len`.

#[derive(Debug)]
pub(crate) struct Ring {
    /// `cap` bytes, or none while parked.
    buf: Vec<u8>,
    cap: usize,
    head: usize,
    len: usize,
}

impl Ring {
    /// A ring of `cap` bytes (at least 1).
    pub fn new(cap: usize) -> Ring {
        Ring {
            buf: vec![0; cap.max(1)],
            cap: cap.max(1),
            head: 0,
            len: 0,
        }
    }

    /// Whether the ring holds no memory now.
    pub fn is_parked(&self) -> bool {
        self.buf.is_empty()
    }

    /// The ring's memory, if it is empty and holds some (the caller knows
    /// no out-of-order bytes sit past `len`); the ring keeps its capacity
    /// and restarts at offset 0 when it takes memory again.
    pub fn park(&mut self) -> Option<Vec<u8>> {
        if self.len > 0 || self.is_parked() {
            return None;
        }
        self.head = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Takes the ring's memory, for [`Ring::reuse`], whatever it holds
    /// (the bytes are dropped; `None` while parked): the ring is left
    /// empty and parked.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        if self.is_parked() {
            return None;
        }
        self.head = 0;
        self.len = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Memory again for a parked ring: `spare` when it has the ring's
    /// size, else newly allocated. No-op when not parked.
    pub fn unpark(&mut self, spare: Option<Vec<u8>>) {
        if !self.is_parked() {
            return;
        }
        self.buf = match spare {
            Some(v) if v.len() == self.cap => v,
            _ => vec![0; self.cap],
        };
    }

    /// An empty ring of `cap` bytes in `spare`'s memory when it has
    /// exactly that size (no allocation, no zeroing: bytes past `len`
    /// are never read before they are written), else a new one.
    pub fn reuse(spare: Option<Vec<u8>>, cap: usize) -> Ring {
        match spare {
            Some(buf) if buf.len() == cap.max(1) => Ring {
                buf,
                cap: cap.max(1),
                head: 0,
                len: 0,
            },
            _ => Ring::new(cap),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn free(&self) -> usize {
        self.cap() - self.len
    }

    fn phys(&self, off: usize) -> usize {
        // off < cap and head < cap: no overflow for cap ≤ 2^30.
        let p = self.head + off;
        if p >= self.cap() {
            p - self.cap()
        } else {
            p
        }
    }

    /// Appends as much of `data` as fits; returns the bytes taken.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        self.write_at(self.len, &data[..n]);
        self.len += n;
        n
    }

    /// Writes `data` at offset `off` from the head, clipped to the capacity.
    /// Does not change `len`.
    pub fn write_at(&mut self, off: usize, data: &[u8]) {
        if off >= self.cap() || data.is_empty() {
            return;
        }
        // The owner unparks before writing; a write to a parked ring
        // allocates rather than lose bytes.
        self.unpark(None);
        let n = data.len().min(self.cap() - off);
        let start = self.phys(off);
        let first = n.min(self.cap() - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
    }

    /// Marks `n` more bytes (already written past `len`) as part of the
    /// contents.
    pub fn grow(&mut self, n: usize) {
        self.len = (self.len + n).min(self.cap());
    }

    /// Drops `n` bytes from the head.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        // The head is never reset when the ring empties: out-of-order
        // data may already sit past `len`, placed relative to it.
        self.head = self.phys(n % self.cap());
        self.len -= n;
    }

    /// The `n` bytes at offset `off` (clipped to the capacity), as one or
    /// two slices.
    pub fn slices(&self, off: usize, n: usize) -> (&[u8], &[u8]) {
        if off >= self.cap() || n == 0 || self.is_parked() {
            return (&[], &[]);
        }
        let n = n.min(self.cap() - off);
        let start = self.phys(off);
        let first = n.min(self.cap() - start);
        (&self.buf[start..start + first], &self.buf[..n - first])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: &Ring, off: usize, n: usize) -> Vec<u8> {
        let (a, b) = r.slices(off, n);
        [a, b].concat()
    }

    #[test]
    fn take_gives_the_memory_whatever_the_ring_holds() {
        let mut r = Ring::new(8);
        assert_eq!(r.push(b"abcdef"), 6);
        r.consume(2);
        let m = r.take().expect("memory");
        assert_eq!(m.len(), 8);
        assert!(r.is_parked() && r.len() == 0);
        assert_eq!(r.take(), None, "nothing left to take");
        // The memory serves another ring; it reads only its own bytes.
        let mut r2 = Ring::new(8);
        let _ = r2.park();
        r2.unpark(Some(m));
        assert_eq!(r2.push(b"xy"), 2);
        assert_eq!(collect(&r2, 0, 2), b"xy");
        assert_eq!(r2.len(), 2);
    }

    #[test]
    fn wraps() {
        let mut r = Ring::new(8);
        assert_eq!(r.push(b"abcdef"), 6);
        r.consume(4);
        assert_eq!(r.push(b"ghijklmn"), 6);
        assert_eq!(r.len(), 8);
        assert_eq!(collect(&r, 0, 8), b"efghijkl");
        let (a, b) = r.slices(0, 8);
        assert_eq!((a.len(), b.len()), (4, 4));
        r.consume(3);
        assert_eq!(collect(&r, 1, 4), b"ijkl");
        r.write_at(5, b"XYZW");
        assert_eq!(collect(&r, 0, 8), b"hijklXYZ");
        r.grow(2);
        assert_eq!(r.len(), 7);
        r.consume(100);
        assert_eq!(r.len(), 0);
        // Emptied, the ring keeps its origin: data written past `len`
        // before is still where it was put.
        let mut r = Ring::new(8);
        r.push(b"abc");
        r.write_at(5, b"Z");
        r.consume(3);
        r.push(b"xy");
        assert_eq!(collect(&r, 0, 3), b"xyZ");
        assert_eq!(r.slices(9, 1), (&[][..], &[][..]));
    }

    #[test]
    fn an_empty_ring_parks_its_memory_and_takes_it_back() {
        let mut r = Ring::new(8);
        r.push(b"abc");
        assert!(r.park().is_none(), "not while it holds bytes");
        r.consume(3);
        let v = r.park().expect("empty: parks");
        assert_eq!((v.len(), r.cap(), r.free(), r.is_parked()), (8, 8, 8, true));
        assert!(r.park().is_none());
        assert_eq!(r.slices(0, 4), (&[][..], &[][..]));
        r.unpark(Some(v));
        assert_eq!(r.push(b"0123456789"), 8);
        assert_eq!(collect(&r, 0, 8), b"01234567");
        // A write while parked allocates instead of losing bytes.
        r.consume(8);
        let _ = r.park();
        assert_eq!(r.push(b"xy"), 2);
        assert_eq!(collect(&r, 0, 2), b"xy");
        // Memory of another size is not taken.
        r.consume(2);
        let _ = r.park();
        r.unpark(Some(vec![0; 4]));
        assert_eq!(r.cap(), 8);
        assert_eq!(r.push(b"abcdefgh"), 8);
    }
}
