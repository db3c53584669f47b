//! Fuzz target `loadgen_server`: see `qsplice_fuzz::loadgen` for what it
//! exercises and which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::loadgen_server(data));
