//! Fuzz target `splice_translate6`: see `qsplice_fuzz::splice_translate6`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::splice_translate6(data));
