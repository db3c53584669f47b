//! Fuzz target `ptb`: see `qsplice_fuzz::ptb` for what it exercises and
//! which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::ptb(data));
