//! NUMA topology and the placement plan.
//!
//! [`Topology::detect`] reads the machine with hwloc (`hwlocality`): NUMA
//! nodes with their memory and CPUs, cores, packages. [`plan`] lays a config
//! onto it the way the runtime will run it — worker *i* polls rx/tx queue *i*
//! of every port; one mempool per NUMA node that runs workers, feeding the
//! rx queues those workers poll — and explains each decision, with warnings
//! for anything that would cross a NUMA boundary or starve a thread.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hwlocality::object::types::ObjectType;
use qsplice_config::Config;

/// One NUMA node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// OS index of the node.
    pub id: u32,
    /// Local memory in bytes (0 if unknown).
    pub memory_bytes: u64,
    /// OS indices of the processing units (hardware threads) on the node.
    pub cpus: Vec<u32>,
    /// Physical cores on the node.
    pub cores: usize,
}

/// The machine as far as placement is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// NUMA nodes (a machine without NUMA information has one node 0).
    pub nodes: Vec<Node>,
    /// Processor packages (sockets).
    pub packages: usize,
    /// CPUs this process may run on (its affinity mask), if known.
    pub allowed_cpus: Option<Vec<u32>>,
}

/// Topology discovery failed.
#[derive(Debug)]
pub struct TopoError(String);

impl fmt::Display for TopoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topology: {}", self.0)
    }
}
impl std::error::Error for TopoError {}

impl Topology {
    /// Read the machine's topology.
    pub fn detect() -> Result<Topology, TopoError> {
        let topo = hwlocality::Topology::new().map_err(|e| TopoError(format!("hwloc: {e}")))?;
        let pus_of = |o: &hwlocality::object::TopologyObject| -> Vec<u32> {
            o.cpuset()
                .map(|cs| cs.iter_set().map(|i| usize::from(i) as u32).collect())
                .unwrap_or_default()
        };
        let cores: Vec<Vec<u32>> = topo
            .objects_with_type(ObjectType::Core)
            .map(pus_of)
            .collect();
        let mut nodes: Vec<Node> = topo
            .objects_with_type(ObjectType::NUMANode)
            .map(|n| {
                let cpus = pus_of(n);
                let ncores = cores
                    .iter()
                    .filter(|c| c.iter().any(|p| cpus.contains(p)))
                    .count();
                Node {
                    id: n.os_index().unwrap_or(0) as u32,
                    memory_bytes: n.total_memory(),
                    cpus,
                    cores: ncores,
                }
            })
            .collect();
        if nodes.is_empty() {
            let cpus: Vec<u32> = topo
                .objects_with_type(ObjectType::PU)
                .filter_map(|p| p.os_index())
                .map(|i| i as u32)
                .collect();
            nodes.push(Node {
                id: 0,
                memory_bytes: 0,
                cores: cores.len(),
                cpus,
            });
        }
        nodes.sort_by_key(|n| n.id);
        let packages = topo.objects_with_type(ObjectType::Package).count().max(1);
        let allowed_cpus =
            core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id as u32).collect());
        Ok(Topology {
            nodes,
            packages,
            allowed_cpus,
        })
    }

    /// The NUMA node holding `cpu`.
    pub fn node_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.cpus.contains(&cpu))
            .map(|n| n.id)
    }

    /// Every CPU on the machine.
    pub fn cpus(&self) -> BTreeSet<u32> {
        self.nodes
            .iter()
            .flat_map(|n| n.cpus.iter().copied())
            .collect()
    }

    /// A summary of nodes, cores, CPUs and memory.
    pub fn render_machine(&self) -> String {
        use fmt::Write;
        let mut s = String::new();
        let cpus = self.cpus();
        let cores: usize = self.nodes.iter().map(|n| n.cores).sum();
        let _ = writeln!(
            s,
            "machine: {} package(s), {} NUMA node(s), {} core(s), {} CPU(s)",
            self.packages,
            self.nodes.len(),
            cores,
            cpus.len()
        );
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "  node {}: {} MiB, {} core(s), CPUs {}",
                n.id,
                n.memory_bytes >> 20,
                n.cores,
                ranges(&n.cpus)
            );
        }
        if let Some(a) = &self.allowed_cpus {
            let _ = writeln!(s, "  this process may run on CPUs {}", ranges(a));
        }
        s
    }
}

/// "0-3,8" style list.
fn ranges(v: &[u32]) -> String {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    if out.is_empty() {
        "(none)".into()
    } else {
        out.join(",")
    }
}

/// NUMA node of a port's device: PCI devices from sysfs, af_packet vdevs
/// from their kernel interface's device; other virtual devices have none.
pub fn port_socket(device: &str) -> Option<u32> {
    let read = |p: String| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .map(|n| n as u32)
    };
    let name = device.split(',').next().unwrap_or(device);
    if name.starts_with("net_af_packet") {
        let iface = device.split(',').find_map(|kv| kv.strip_prefix("iface="))?;
        return read(format!("/sys/class/net/{iface}/device/numa_node"));
    }
    if name.starts_with("net_") {
        return None;
    }
    let pci = if name.matches(':').count() == 1 {
        format!("0000:{name}")
    } else {
        name.to_string()
    };
    read(format!("/sys/bus/pci/devices/{pci}/numa_node"))
}

/// Where one worker lcore runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPlace {
    /// EAL lcore id.
    pub lcore: u32,
    /// CPU it is pinned to.
    pub cpu: u32,
    /// NUMA node of that CPU (None: CPU not on this machine).
    pub node: Option<u32>,
    /// Queue index it polls on every port.
    pub queue: u16,
}

/// A port and its NUMA node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlace {
    /// Config name.
    pub name: String,
    /// Device spec.
    pub device: String,
    /// NUMA node (None: virtual device, any node).
    pub node: Option<u32>,
}

/// A mempool and who uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolPlace {
    /// NUMA node it is allocated on (None: any).
    pub node: Option<u32>,
    /// Mbufs.
    pub mbufs: u32,
    /// Worker lcores whose rx queues fill from it.
    pub lcores: Vec<u32>,
}

/// The placement plan for a config on a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The control thread's lcore and CPU.
    pub main: (u32, u32),
    /// Workers.
    pub workers: Vec<WorkerPlace>,
    /// Ports.
    pub ports: Vec<PortPlace>,
    /// Mempools.
    pub pools: Vec<PoolPlace>,
    /// Why things are where they are.
    pub notes: Vec<String>,
    /// What looks wrong.
    pub warnings: Vec<String>,
}

/// CPU of each lcore from `eal.lcore_map` ("L@C" items), else lcore = CPU.
fn lcore_cpus(cfg: &Config) -> BTreeMap<u32, u32> {
    let mut m = BTreeMap::new();
    for item in cfg.eal.lcore_map.split(',').filter(|s| !s.is_empty()) {
        let (l, c) = item.split_once('@').unwrap_or((item, item));
        let c = c.trim_matches(|ch| ch == '(' || ch == ')');
        let c = c.split('-').next().unwrap_or(c);
        if let (Ok(l), Ok(c)) = (l.parse(), c.parse()) {
            m.insert(l, c);
        }
    }
    m
}

/// Lay `cfg` onto `topo`, with port NUMA nodes read from sysfs ([`port_socket`]).
pub fn plan(topo: &Topology, cfg: &Config) -> Plan {
    plan_with(topo, cfg, port_socket)
}

/// [`plan`] with the port → NUMA node lookup supplied by the caller.
pub fn plan_with(topo: &Topology, cfg: &Config, port_node: impl Fn(&str) -> Option<u32>) -> Plan {
    let map = lcore_cpus(cfg);
    let cpu_of = |l: u32| map.get(&l).copied().unwrap_or(l);
    let cpus = topo.cpus();
    let mut warnings = Vec::new();
    let mut notes = Vec::new();

    let main = (cfg.eal.main_lcore, cpu_of(cfg.eal.main_lcore));
    let workers: Vec<WorkerPlace> = cfg
        .eal
        .worker_lcores
        .iter()
        .enumerate()
        .map(|(i, &l)| WorkerPlace {
            lcore: l,
            cpu: cpu_of(l),
            node: topo.node_of_cpu(cpu_of(l)),
            queue: i as u16,
        })
        .collect();
    for w in std::iter::once(&WorkerPlace {
        lcore: main.0,
        cpu: main.1,
        node: topo.node_of_cpu(main.1),
        queue: 0,
    })
    .chain(&workers)
    {
        if !cpus.contains(&w.cpu) {
            warnings.push(format!(
                "lcore {} maps to CPU {}, which this machine does not have (CPUs {})",
                w.lcore,
                w.cpu,
                ranges(&cpus.iter().copied().collect::<Vec<_>>())
            ));
        } else if let Some(allowed) = &topo.allowed_cpus {
            if !allowed.contains(&w.cpu) {
                warnings.push(format!(
                    "lcore {} maps to CPU {}, outside this process's affinity mask ({})",
                    w.lcore,
                    w.cpu,
                    ranges(allowed)
                ));
            }
        }
    }
    for w in &workers {
        if w.cpu == main.1 {
            warnings.push(format!("worker lcore {} shares CPU {} with the control thread: busy polling will starve it", w.lcore, w.cpu));
        }
    }
    let mut seen = BTreeMap::new();
    for w in &workers {
        if let Some(prev) = seen.insert(w.cpu, w.lcore) {
            warnings.push(format!(
                "worker lcores {prev} and {} share CPU {}: both busy-poll, each gets half",
                w.lcore, w.cpu
            ));
        }
    }

    let ports: Vec<PortPlace> = cfg
        .ports
        .iter()
        .map(|p| PortPlace {
            name: p.name.clone(),
            device: p.device.clone(),
            node: port_node(&p.device),
        })
        .collect();
    for p in &ports {
        match p.node {
            Some(n) => {
                for w in &workers {
                    if let Some(wn) = w.node {
                        if wn != n {
                            warnings.push(format!("worker lcore {} (node {wn}) polls port `{}` on node {n}: every packet crosses the interconnect; move the lcore to a CPU of node {n}", w.lcore, p.name));
                        }
                    }
                }
            }
            None => notes.push(format!(
                "port `{}` ({}) is a virtual device: no NUMA affinity",
                p.name, p.device
            )),
        }
    }

    // One pool per node running workers (None: CPU unknown).
    let mut by_node: BTreeMap<Option<u32>, Vec<u32>> = BTreeMap::new();
    for w in &workers {
        by_node.entry(w.node).or_default().push(w.lcore);
    }
    let pools: Vec<PoolPlace> = by_node
        .into_iter()
        .map(|(node, lcores)| PoolPlace {
            node,
            mbufs: cfg.mempool.mbufs,
            lcores,
        })
        .collect();
    for pool in &pools {
        let where_ = pool
            .node
            .map_or("any node".to_string(), |n| format!("node {n}"));
        let local_ports: Vec<&str> = ports
            .iter()
            .filter(|p| p.node.is_none() || p.node == pool.node)
            .map(|p| p.name.as_str())
            .collect();
        notes.push(format!(
            "mempool on {where_} ({} mbufs) because worker lcore(s) {:?} run there; it feeds their rx queues on port(s) {}",
            pool.mbufs,
            pool.lcores,
            if local_ports.is_empty() { "(none local)".into() } else { local_ports.join(", ") }
        ));
        for p in &ports {
            if let (Some(pn), Some(mn)) = (p.node, pool.node) {
                if pn != mn {
                    warnings.push(format!("mempool on node {mn} feeds rx queues of port `{}` on node {pn}: the NIC writes packets into remote memory", p.name));
                }
            }
        }
    }
    if workers.len() > cpus.len().saturating_sub(1) {
        warnings.push(format!(
            "{} worker lcore(s) + the control thread on {} CPU(s): workers will share CPUs",
            workers.len(),
            cpus.len()
        ));
    }
    notes.push(format!(
        "each worker polls its own rx/tx queue on every port ({} queue pair(s) per port)",
        workers.len()
    ));
    Plan {
        main,
        workers,
        ports,
        pools,
        notes,
        warnings,
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = |n: Option<u32>| n.map_or("any".to_string(), |n| n.to_string());
        writeln!(f, "placement plan:")?;
        writeln!(
            f,
            "  control thread: lcore {} on CPU {}",
            self.main.0, self.main.1
        )?;
        for w in &self.workers {
            writeln!(
                f,
                "  worker lcore {} on CPU {} (node {}), polls queue {} of every port",
                w.lcore,
                w.cpu,
                node(w.node),
                w.queue
            )?;
        }
        for p in &self.ports {
            writeln!(
                f,
                "  port {} [{}] on node {}",
                p.name,
                p.device,
                node(p.node)
            )?;
        }
        for p in &self.pools {
            writeln!(
                f,
                "  mempool on node {}: {} mbufs for lcores {:?}",
                node(p.node),
                p.mbufs,
                p.lcores
            )?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        if self.warnings.is_empty() {
            writeln!(f, "  no placement warnings")?;
        }
        for w in &self.warnings {
            writeln!(f, "  WARNING: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes() -> Topology {
        Topology {
            nodes: vec![
                Node {
                    id: 0,
                    memory_bytes: 16 << 30,
                    cpus: vec![0, 1, 2, 3],
                    cores: 4,
                },
                Node {
                    id: 1,
                    memory_bytes: 16 << 30,
                    cpus: vec![4, 5, 6, 7],
                    cores: 4,
                },
            ],
            packages: 2,
            allowed_cpus: None,
        }
    }

    fn cfg(workers: &str, map: &str) -> Config {
        qsplice_config::parse(&format!(
            "[eal]\nmain_lcore = 0\nworker_lcores = {workers}\nlcore_map = \"{map}\"\n[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\naddresses = [\"10.0.0.1/24\"]\n"
        ))
        .unwrap()
    }

    #[test]
    fn detect_finds_cpus() {
        let t = Topology::detect().expect("hwloc works here");
        assert!(!t.cpus().is_empty());
        assert!(t.render_machine().contains("NUMA node"));
    }

    #[test]
    fn workers_spread_over_nodes_get_a_pool_each() {
        let p = plan(&two_nodes(), &cfg("[1, 5]", ""));
        assert_eq!(p.workers[1].node, Some(1));
        assert_eq!(p.pools.len(), 2);
        assert_eq!(p.pools[1].lcores, vec![5]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn missing_cpu_and_shared_cpu_are_warned() {
        let p = plan(&two_nodes(), &cfg("[1, 2]", "0@0,1@0,2@9"));
        let w = p.warnings.join("\n");
        assert!(w.contains("shares CPU 0 with the control thread"), "{w}");
        assert!(w.contains("CPU 9, which this machine does not have"), "{w}");
    }

    #[test]
    fn display_lists_everything() {
        let s = plan(&two_nodes(), &cfg("[1]", "")).to_string();
        assert!(s.contains("worker lcore 1 on CPU 1 (node 0)"));
        assert!(s.contains("virtual device"));
        assert!(s.contains("no placement warnings"));
    }

    #[test]
    fn remote_port_is_warned_for_lcore_and_mempool() {
        // Port on node 1, worker and its mempool on node 0.
        let p = plan_with(&two_nodes(), &cfg("[1]", ""), |_| Some(1));
        let w = p.warnings.join("\n");
        assert!(
            w.contains("worker lcore 1 (node 0) polls port `a` on node 1"),
            "{w}"
        );
        assert!(
            w.contains("mempool on node 0 feeds rx queues of port `a` on node 1"),
            "{w}"
        );
        // Moving the worker to node 1 clears both.
        let p = plan_with(&two_nodes(), &cfg("[5]", ""), |_| Some(1));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn ranges_compress() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}
