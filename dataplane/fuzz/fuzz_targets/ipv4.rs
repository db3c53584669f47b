//! Fuzz target `ipv4`: see `qsplice_fuzz::ipv4` for what it exercises and
//! which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::ipv4(data));
