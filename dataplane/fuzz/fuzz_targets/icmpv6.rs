//! Fuzz target `icmpv6`: see `qsplice_fuzz::icmpv6`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qsplice_fuzz::icmpv6(data));
