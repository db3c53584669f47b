//! Fuzz target `splice_translate`: see `qsplice_fuzz::splice_translate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::splice_translate(data));
