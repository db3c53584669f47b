//! Fuzz target `ipv6`: see `qsplice_fuzz::ipv6`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::ipv6(data));
