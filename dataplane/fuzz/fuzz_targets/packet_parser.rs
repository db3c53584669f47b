//! Fuzz target `packet_parser`: see `qsplice_fuzz::packet_parser` for what it exercises and
//! which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::packet_parser(data));
