//! A bounded set of disjoint sequence ranges, for the receiver's
//! out-of-order queue and the sender's SACK scoreboard.
//!
//! Ranges are kept sorted in sequence order, never overlapping nor touching
//! (touching ranges are merged). All the ranges of one set lie within 2^31
//! of each other (one window), so the serial-number comparisons of
//! [`qsplice_splice::seq`] order them correctly. Each range carries a
//! recency stamp (RFC 2018: the SACK block of the most recent arrival goes
//! first). Fixed capacity, no allocation; an insertion that would need a
//! new slot in a full set is refused.

use arrayvec::ArrayVec;
use qsplice_splice::seq::{ge, gt, le, lt};

/// One range `[start, end)` in sequence space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeqRange {
    pub start: u32,
    pub end: u32,
    pub stamp: u32,
}

impl SeqRange {
    pub fn len(&self) -> u32 {
        self.end.wrapping_sub(self.start)
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SeqRanges<const N: usize> {
    r: ArrayVec<SeqRange, N>,
}

/// What [`SeqRanges::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Stored (possibly merged); the number of bytes not covered before.
    New(u32),
    /// The set is full and the range touches none of it: nothing changed.
    Full,
}

impl<const N: usize> SeqRanges<N> {
    pub fn new() -> Self {
        SeqRanges { r: ArrayVec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.r.is_empty()
    }

    pub fn len(&self) -> usize {
        self.r.len()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SeqRange> + '_ {
        self.r.iter()
    }

    pub fn first(&self) -> Option<&SeqRange> {
        self.r.first()
    }

    /// Adds `[start, end)` (ignored when empty), merging what it touches.
    pub fn insert(&mut self, start: u32, end: u32, stamp: u32) -> Inserted {
        if !lt(start, end) {
            return Inserted::New(0);
        }
        // Ranges [i, j) overlap or touch the new one.
        let i = self
            .r
            .iter()
            .position(|x| ge(x.end, start))
            .unwrap_or(self.r.len());
        let mut j = i;
        while j < self.r.len() && le(self.r[j].start, end) {
            j += 1;
        }
        if i == j {
            if self.r.is_full() {
                return Inserted::Full;
            }
            self.r.insert(i, SeqRange { start, end, stamp });
            return Inserted::New(end.wrapping_sub(start));
        }
        let before = self.covered(start, end);
        let s = if lt(self.r[i].start, start) {
            self.r[i].start
        } else {
            start
        };
        let e = if gt(self.r[j - 1].end, end) {
            self.r[j - 1].end
        } else {
            end
        };
        self.r[i] = SeqRange {
            start: s,
            end: e,
            stamp,
        };
        self.r.drain(i + 1..j);
        Inserted::New(end.wrapping_sub(start).wrapping_sub(before))
    }

    /// Forgets everything below `seq`.
    pub fn trim_below(&mut self, seq: u32) {
        let n = self.r.iter().take_while(|x| le(x.end, seq)).count();
        self.r.drain(..n);
        if let Some(f) = self.r.first_mut() {
            if lt(f.start, seq) {
                f.start = seq;
            }
        }
    }

    /// Bytes of `[a, b)` covered by the set.
    pub fn covered(&self, a: u32, b: u32) -> u32 {
        if !lt(a, b) {
            return 0;
        }
        let mut n = 0u32;
        for x in &self.r {
            if le(x.end, a) {
                continue;
            }
            if ge(x.start, b) {
                break;
            }
            let s = if lt(x.start, a) { a } else { x.start };
            let e = if gt(x.end, b) { b } else { x.end };
            n = n.wrapping_add(e.wrapping_sub(s));
        }
        n
    }

    /// Whether `seq` lies in a range.
    pub fn contains(&self, seq: u32) -> bool {
        self.r.iter().any(|x| le(x.start, seq) && lt(seq, x.end))
    }

    /// The first sequence number at or after `seq` not in a range.
    pub fn skip_covered(&self, seq: u32) -> u32 {
        let mut s = seq;
        for x in &self.r {
            if le(x.start, s) && lt(s, x.end) {
                s = x.end;
            }
        }
        s
    }

    /// The start of the first range beginning after `seq`, if any.
    pub fn next_start_after(&self, seq: u32) -> Option<u32> {
        self.r.iter().map(|x| x.start).find(|&s| gt(s, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans<const N: usize>(s: &SeqRanges<N>) -> Vec<(u32, u32)> {
        s.iter().map(|x| (x.start, x.end)).collect()
    }

    #[test]
    fn insert_merge_trim() {
        let mut s = SeqRanges::<3>::new();
        assert_eq!(s.insert(100, 200, 1), Inserted::New(100));
        assert_eq!(s.insert(300, 400, 2), Inserted::New(100));
        assert_eq!(s.insert(500, 600, 3), Inserted::New(100));
        assert_eq!(s.insert(700, 800, 4), Inserted::Full);
        assert_eq!(s.insert(150, 250, 5), Inserted::New(50));
        assert_eq!(spans(&s), vec![(100, 250), (300, 400), (500, 600)]);
        // Touching merges; bridging several merges them all.
        assert_eq!(s.insert(250, 500, 6), Inserted::New(150));
        assert_eq!(spans(&s), vec![(100, 600)]);
        assert_eq!(s.first().unwrap().stamp, 6);
        assert_eq!(s.covered(0, 1000), 500);
        assert_eq!(s.covered(150, 160), 10);
        assert!(s.contains(100) && !s.contains(600));
        assert_eq!(s.skip_covered(120), 600);
        assert_eq!(s.skip_covered(50), 50);
        s.trim_below(400);
        assert_eq!(spans(&s), vec![(400, 600)]);
        s.trim_below(600);
        assert!(s.is_empty());
    }

    #[test]
    fn wraps_around_zero() {
        let mut s = SeqRanges::<4>::new();
        s.insert(0xffff_ff00, 0x100, 1);
        s.insert(0x200, 0x300, 2);
        assert_eq!(s.covered(0xffff_fff0, 0x210), 0x110 + 0x10);
        assert_eq!(s.next_start_after(0x50), Some(0x200));
        s.trim_below(0x10);
        assert_eq!(spans(&s), vec![(0x10, 0x100), (0x200, 0x300)]);
    }
}
