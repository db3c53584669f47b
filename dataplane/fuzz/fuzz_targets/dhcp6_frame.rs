//! Fuzz target `dhcp6_frame`: see `qsplice_fuzz::dhcp6_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::dhcp6_frame(data));
