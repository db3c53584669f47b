// Link impairment for end-to-end tests, for kernels without sch_netem:
// loaded by tests/tools/impair.sh with tc (cls_bpf, direct action).
//
//   section "egress":  on the clsact egress hook: drops LOSS_PER_MILLE of the
//                      packets and duplicates DUP_PER_MILLE of them
//                      (bpf_clone_redirect to the same device);
//   section "reorder": classifier on an HTB root: sends REORDER_PER_MILLE of
//                      the packets to a slow class (1:20) so they leave after
//                      packets sent later through the fast class (1:10).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#ifndef LOSS_PER_MILLE
#define LOSS_PER_MILLE 10
#endif
#ifndef DUP_PER_MILLE
#define DUP_PER_MILLE 10
#endif
#ifndef REORDER_PER_MILLE
#define REORDER_PER_MILLE 10
#endif

static __u32 (*get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;
static long (*clone_redirect)(void *skb, __u32 ifindex, __u64 flags) =
    (void *)BPF_FUNC_clone_redirect;

__attribute__((section("egress"), used)) int impair_egress(struct __sk_buff *skb) {
    __u32 r = get_prandom_u32() % 1000;
    if (r < LOSS_PER_MILLE)
        return TC_ACT_SHOT;
    if (r < LOSS_PER_MILLE + DUP_PER_MILLE)
        clone_redirect(skb, skb->ifindex, 0);
    return TC_ACT_OK;
}

__attribute__((section("reorder"), used)) int impair_reorder(struct __sk_buff *skb) {
    // Loaded without direct action: the return value is the class id.
    __u32 r = get_prandom_u32() % 1000;
    return r < REORDER_PER_MILLE ? 0x10020 : 0x10010;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
