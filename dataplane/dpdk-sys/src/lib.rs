//! Raw, generated bindings to the system DPDK (22.11) and to qsplice's C
//! shim (`qs_*`) for DPDK's `static inline` functions.
//!
//! Nothing here is safe to call directly: use the `qsplice-dpdk` crate, which
//! is the only place in the project allowed to call into this one.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all, clippy::undocumented_unsafe_blocks)]
#![allow(missing_debug_implementations, unsafe_op_in_unsafe_fn)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
