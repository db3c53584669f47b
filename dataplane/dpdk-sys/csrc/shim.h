/* C shim exporting DPDK's `static inline` API as real symbols (bindgen
 * cannot bind inline functions and macros). Keep this file small: the hot
 * path reads mbuf fields directly in Rust because these calls cannot be
 * inlined across the C/Rust boundary. */
#ifndef QSPLICE_SHIM_H
#define QSPLICE_SHIM_H
#include <stdint.h>
struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

int qs_errno(void);
unsigned qs_lcore_id(void);
uint64_t qs_rdtsc(void);
void qs_pause(void);

uint16_t qs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t qs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *qs_pktmbuf_alloc(struct rte_mempool *mp);
int qs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void qs_pktmbuf_free(struct rte_mbuf *m);
unsigned qs_mempool_avail_count(const struct rte_mempool *mp);
unsigned qs_mempool_in_use_count(const struct rte_mempool *mp);

unsigned qs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned qs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned qs_ring_count(const struct rte_ring *r);
#endif
