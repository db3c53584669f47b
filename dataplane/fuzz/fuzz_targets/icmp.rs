//! Fuzz target `icmp`: see `qsplice_fuzz::icmp` for what it exercises and
//! which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::icmp(data));
