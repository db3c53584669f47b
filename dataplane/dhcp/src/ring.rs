//! A fixed-capacity FIFO, allocated once.

/// FIFO ring of `Copy` values; `push` refuses (returns `false`) when full.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T: Copy + Default> {
    buf: Vec<T>,
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Ring<T> {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Ring {
            buf: vec![T::default(); cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, v: T) -> bool {
        if self.len == self.buf.len() {
            return false;
        }
        let i = (self.head + self.len) % self.buf.len();
        self.buf[i] = v;
        self.len += 1;
        true
    }

    pub(crate) fn front(&self) -> Option<T> {
        (self.len > 0).then(|| self.buf[self.head])
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        let v = self.front()?;
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn fifo_wraps_and_refuses_when_full() {
        let mut r = Ring::<u32>::with_capacity(3);
        assert!(r.push(1) && r.push(2) && r.push(3));
        assert!(!r.push(4));
        assert_eq!(r.pop(), Some(1));
        assert!(r.push(4));
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r.pop(), r.pop(), r.pop(), r.pop()),
            (Some(2), Some(3), Some(4), None)
        );
        assert_eq!(r.front(), None);
    }
}
