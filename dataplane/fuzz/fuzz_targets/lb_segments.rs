//! Fuzz target `lb_segments`: see `qsplice_fuzz::lb::lb_segments`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::lb::lb_segments(data));
