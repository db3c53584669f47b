//! A fixed-capacity byte ring, allocated once.
//!
//! Offsets are relative to the oldest byte (`head`). The send buffer keeps
//! `len` queued bytes (the byte at offset 0 has sequence number `snd_base`);
//! the receive buffer keeps `len` in-order bytes and writes out-of-order data
//! past them with [`Ring::write_at`] without changing `len`.

#[derive(Debug)]
pub(crate) struct Ring {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl Ring {
    /// A ring of `cap` bytes (at least 1).
    pub fn new(cap: usize) -> Ring {
        Ring {
            buf: vec![0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    /// An empty ring of `cap` bytes in `spare`'s memory when it has
    /// exactly that size (no allocation, no zeroing: bytes past `len`
    /// are never read before they are written), else a new one.
    pub fn reuse(spare: Option<Vec<u8>>, cap: usize) -> Ring {
        match spare {
            Some(buf) if buf.len() == cap.max(1) => Ring {
                buf,
                head: 0,
                len: 0,
            },
            _ => Ring::new(cap),
        }
    }

    /// The ring's memory, for [`Ring::reuse`].
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub fn cap(&self) -> usize {
        self.buf.len()
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
        if off >= self.cap() {
            return;
        }
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
        if off >= self.cap() || n == 0 {
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
}
