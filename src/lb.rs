//! The balancer's control side lives in `control/balancer`
//! (`qsplice-balancer`); the binary runs it with DPDK's frames.

pub use qsplice_balancer::{
    BackendReport, HistReport, LbReport, SessionRowReport, VipReport, TABLE_DUMP_ROWS,
};

/// The balancer's control side over DPDK mbufs.
pub type LbRuntime = qsplice_balancer::LbRuntime<qsplice_dpdk::Mbuf>;
