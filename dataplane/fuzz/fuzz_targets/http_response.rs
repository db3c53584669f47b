//! Fuzz target `http_response`: see `qsplice_fuzz::http_response` for what
//! it exercises and which invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::http_response(data));
