//! Fuzz target `lb_stateful`: see `qsplice_fuzz::lb_stateful::lb_stateful`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::lb_stateful::lb_stateful(data));
