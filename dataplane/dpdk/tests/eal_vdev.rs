//! Boots EAL in-process (no hugepages) on `net_ring` and `net_null` vdevs and
//! exercises mempools, mbufs, port setup, rx/tx and rings against real DPDK.
//!
//! EAL can be initialised once per process, so this file holds one test.

use arrayvec::ArrayVec;
use qsplice_dpdk::{Eal, EthPort, Mbuf, Mempool, PortConf, Ring};
use qsplice_netdev::Clock;

fn eal_args() -> Vec<String> {
    let prefix = format!("qsplice-test-{}", std::process::id());
    [
        "qsplice-test",
        "-l",
        "0",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--file-prefix",
        &prefix,
        "--log-level",
        "warning",
        "--vdev",
        "net_ring0",
        "--vdev",
        "net_null0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn frame(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("mbuf");
    assert!(m.set_len(bytes.len()));
    m.data_mut().copy_from_slice(bytes);
    m
}

#[test]
fn eal_ports_mbufs_rings() {
    let eal = Eal::init(&eal_args()).expect("EAL init");
    assert!(
        Eal::version().starts_with("DPDK 22.11"),
        "{}",
        Eal::version()
    );
    // A second init is refused, not undefined behaviour.
    let again = Eal::init(&eal_args()).unwrap_err();
    assert_eq!(again.errno, 114);

    let pool = Mempool::create(eal, "test_pool", 1023, 32, 2176, None).expect("pool");
    assert_eq!(pool.size(), 1023);
    let baseline = pool.available();

    // --- Mbuf basics: length, head/tailroom, adj/prepend, drop frees.
    {
        let mut m = pool.alloc().unwrap();
        assert_eq!(m.len(), 0);
        assert_eq!(m.headroom(), 128);
        assert!(m.set_len(60));
        assert!(!m.set_len(4096), "beyond the data room must be refused");
        assert_eq!(m.len(), 60);
        m.data_mut()[0] = 0xab;
        assert!(m.prepend(4));
        assert_eq!(m.data()[4], 0xab);
        assert!(m.adj(4));
        assert_eq!(m.data()[0], 0xab);
        assert!(!m.adj(1000));
        assert_eq!(pool.in_use(), 1);
    }
    assert_eq!(
        pool.available(),
        baseline,
        "dropping an Mbuf returns it to the pool"
    );

    // --- Bulk allocation: clamped to the burst's capacity, all or nothing.
    {
        use qsplice_netdev::Burst;
        let mut b: Burst<Mbuf> = Burst::new();
        assert_eq!(pool.alloc_bulk(&mut b, 32), 32);
        assert!(b.iter().all(|m| m.is_empty()));
        assert_eq!(
            pool.alloc_bulk(&mut b, 10_000),
            224,
            "clamped to the capacity"
        );
        assert_eq!(b.len(), 256);
        let (mut c, mut d, mut e): (Burst<Mbuf>, Burst<Mbuf>, Burst<Mbuf>) =
            (Burst::new(), Burst::new(), Burst::new());
        assert_eq!(pool.alloc_bulk(&mut c, 256), 256);
        assert_eq!(pool.alloc_bulk(&mut d, 256), 256);
        // 1023 - 768 = 255 left: a bulk of 256 gets nothing.
        assert_eq!(pool.alloc_bulk(&mut e, 256), 0);
        assert!(e.is_empty());
        assert_eq!(pool.alloc_bulk(&mut e, 200), 200);
    }
    assert_eq!(
        pool.available(),
        baseline,
        "bulk-allocated mbufs return on drop"
    );

    // --- net_ring0 loops tx back to rx.
    let ring_id = EthPort::id_by_name(eal, "net_ring0").expect("net_ring0");
    assert!(EthPort::id_by_name(eal, "net_nonexistent").is_err());
    let conf = PortConf {
        queues: 1,
        rx_desc: 256,
        tx_desc: 256,
        mtu: 1500,
        promiscuous: false,
        rss: true,
        mac: None,
    };
    let mut ring_port =
        EthPort::configure(eal, ring_id, &conf, &[pool]).expect("configure net_ring0");
    assert_eq!(ring_port.info().rss_hf, 0, "one queue: no RSS");
    let mut q = ring_port.take_queues().pop().unwrap();
    assert!(
        ring_port.take_queues().is_empty(),
        "queues are handed out once"
    );

    let mut tx: ArrayVec<Mbuf, 32> = ArrayVec::new();
    for i in 0..10u8 {
        tx.push(frame(&pool, &[i; 64]));
    }
    let sent = q.tx_burst(&mut tx);
    assert_eq!(sent, 10);
    assert!(tx.is_empty());
    let mut rx: ArrayVec<Mbuf, 32> = ArrayVec::new();
    let mut got = 0;
    for _ in 0..100 {
        got += q.rx_burst(&mut rx, 32);
        if got == 10 {
            break;
        }
    }
    assert_eq!(got, 10);
    for (i, m) in rx.iter().enumerate() {
        assert_eq!(
            m.data(),
            &[i as u8; 64][..],
            "frame {i} intact and in order"
        );
    }
    rx.clear();
    let st = ring_port.stats();
    assert_eq!((st.opackets, st.ipackets), (10, 10));

    // --- net_null0: rx produces frames from the pool, tx swallows them.
    let null_id = EthPort::id_by_name(eal, "net_null0").unwrap();
    let mut null_port =
        EthPort::configure(eal, null_id, &conf, &[pool]).expect("configure net_null0");
    let mut nq = null_port.take_queues().pop().unwrap();
    let n = nq.rx_burst(&mut rx, 32);
    assert_eq!(n, 32);
    assert!(rx.iter().all(|m| m.len() == 64));
    assert_eq!(nq.tx_burst(&mut rx), 32);
    assert!(rx.is_empty());

    // --- A DPDK ring carries mbufs; dropping the ring frees what is left.
    let mut r = Ring::create_spsc(eal, "test_ring", 64, None).unwrap();
    for i in 0..5u8 {
        tx.push(frame(&pool, &[i; 10]));
    }
    assert_eq!(r.enqueue_burst(&mut tx), 5);
    assert_eq!(r.len(), 5);
    let mut out: ArrayVec<Mbuf, 2> = ArrayVec::new();
    assert_eq!(
        r.dequeue_burst(&mut out),
        2,
        "bounded by the caller's capacity"
    );
    assert_eq!(out[1].data(), &[1u8; 10][..]);
    drop(out);
    drop(r);

    // --- Every mbuf is back: nothing leaked through tx, rx, rings or drops.
    ring_port.stop();
    null_port.stop();
    // null tx frees synchronously; ring rx consumed everything.
    assert_eq!(pool.available(), baseline, "mempool back to its idle count");

    // --- Launch on a worker is refused when the lcore is not enabled.
    assert!(eal.launch(5, || 0).is_err());
    let clock = qsplice_dpdk::TscClock::new(eal);
    assert!(
        clock.hz() > 100_000_000,
        "TSC frequency measured: {}",
        clock.hz()
    );
    let t0 = clock.now();
    assert!(clock.now() >= t0);
}
