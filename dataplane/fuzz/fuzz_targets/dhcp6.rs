//! Fuzz target `dhcp6`: see `qsplice_fuzz::dhcp6`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::dhcp6(data));
