//! Packet generator (being written).
#![forbid(unsafe_code)]
