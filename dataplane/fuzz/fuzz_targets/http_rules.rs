//! Fuzz target `http_rules`: see `qsplice_fuzz::http_rules`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::http_rules(data));
