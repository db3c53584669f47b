//! Fuzz target `http_xff`: see `qsplice_fuzz::http_xff`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::http_xff(data));
