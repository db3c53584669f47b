//! Fuzz target `tls_hello`: see `qsplice_fuzz::tls_hello`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::tls_hello(data));
