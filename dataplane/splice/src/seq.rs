//! Sequence-number arithmetic modulo 2^32 (RFC 793 §3.3, RFC 1982).
//!
//! `a` is "before" `b` when the signed 32-bit distance from `a` to `b` is
//! positive, which is correct for any two numbers less than 2^31 apart —
//! always the case inside one TCP window.

/// `a < b` in sequence space.
#[inline]
pub fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
#[inline]
pub fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// `a > b` in sequence space.
#[inline]
pub fn gt(a: u32, b: u32) -> bool {
    lt(b, a)
}

/// `a >= b` in sequence space.
#[inline]
pub fn ge(a: u32, b: u32) -> bool {
    le(b, a)
}

/// The later of two sequence numbers.
#[inline]
pub fn max(a: u32, b: u32) -> u32 {
    if ge(a, b) {
        a
    } else {
        b
    }
}

/// The offset that maps sequence space `from` onto `to`: `x + delta(from, to)`
/// turns `from` into `to` (wrapping).
#[inline]
pub fn delta(from: u32, to: u32) -> u32 {
    to.wrapping_sub(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_around() {
        assert!(lt(0xffff_fff0, 0x10));
        assert!(gt(0x10, 0xffff_fff0));
        assert!(le(5, 5) && ge(5, 5) && !lt(5, 5));
        assert_eq!(max(0xffff_ffff, 1), 1);
        assert_eq!(0xffff_fff0u32.wrapping_add(delta(0xffff_fff0, 0x20)), 0x20);
    }

    proptest! {
        #[test]
        fn ordering_is_consistent_within_half_the_space(a in any::<u32>(), d in 1u32..(1 << 31)) {
            let b = a.wrapping_add(d);
            prop_assert!(lt(a, b));
            prop_assert!(gt(b, a));
            prop_assert!(!lt(b, a));
            prop_assert_eq!(max(a, b), b);
        }
    }
}
