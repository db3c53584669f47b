//! Fuzz target `splice_family`: see `qsplice_fuzz::splice_family`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::splice_family(data));
