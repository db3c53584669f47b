//! Fuzz target `tls_session`: see `qsplice_fuzz::tls_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::tls_session(data));
