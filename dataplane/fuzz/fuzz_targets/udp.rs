//! Fuzz target `udp`: see `qsplice_fuzz::udp` for what it exercises and
//! which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::udp(data));
