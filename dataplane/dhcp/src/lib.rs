//! DHCPv4 (placeholder; being written).
