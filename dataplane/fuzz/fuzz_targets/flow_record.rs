//! Fuzz target `flow_record`: see `qsplice_fuzz::flow_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::flow_record(data));
