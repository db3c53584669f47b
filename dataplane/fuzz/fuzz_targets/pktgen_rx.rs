//! Fuzz target `pktgen_rx`: the packet generator's receive side
//! (`qsplice_pktgen::payload::parse_frame` and `rx::RxSide`) on arbitrary
//! frames. Invariants: nothing panics; a parsed header's bytes are really
//! in the frame (magic, stream, seq, TSC at one offset); the per-stream
//! accounting stays consistent (every received packet is unique,
//! duplicated or late; unique ≤ received).
#![no_main]

use qsplice_pktgen::payload::{parse_frame, MAGIC};
use qsplice_pktgen::rx::{RxSide, SeqTracker};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_frame(data) {
        let mut want = [0u8; 18];
        want[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        want[4..6].copy_from_slice(&h.stream.to_be_bytes());
        want[6..10].copy_from_slice(&h.seq.to_be_bytes());
        want[10..18].copy_from_slice(&h.tsc.to_be_bytes());
        assert!(
            data.windows(18).any(|w| w == want),
            "parsed header not in the frame"
        );
    }
    let mut rx = RxSide::new(4, 1_000_000_000);
    rx.frame(data, u64::MAX / 2);
    assert_eq!(rx.c.frames, 1);
    assert!(rx.c.pkts <= 1);
    // Treat the input as a sequence of 32-bit sequence numbers.
    let mut t = SeqTracker::default();
    for w in data.chunks_exact(4) {
        t.record(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let c = t.c;
    assert_eq!(c.unique + c.duplicated + c.late, c.received);
    assert!(c.reordered <= c.unique);
});
