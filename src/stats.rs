//! Aggregated counters as the control thread sees them, rendered as text
//! for operators and as JSON for tests and tooling.

use std::collections::BTreeMap;

use qsplice_engine::Counters;
pub use qsplice_mgmt::report::{NeighborReport, PortReport, Report};

/// Counters as a name → value map.
pub fn counter_map(c: &Counters) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    c.for_each(|k, v| {
        m.insert(k.to_string(), v);
    });
    m
}
