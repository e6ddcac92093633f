// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdp_vip.c: the xdpvip XDP program, one per interface.
 *
 *  - VRRP (IP protocol 112, IPv4 and IPv6): validate; a valid advert updates
 *    vrrp_peer_state, is sent to Go on vrrp_events and dropped; an invalid
 *    one is dropped and counted under its reason in counters.
 *  - TCP/UDP to a virtual server whose VIP is active (this node is MASTER)
 *    and addressed to our MAC or the VRRP virtual MAC: pick a real server
 *    (flow table, persistence table, else Maglev table), rewrite the MACs and
 *    send it with XDP_TX or redirect (LVS direct routing), or encapsulate it
 *    (LVS-TUN: IP-in-IP, GUE or GRE) to a real server elsewhere; answer one too
 *    big for the tunnel with ICMP.
 *  - Everything else: XDP_PASS, untouched.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "consts.h"
#include "shared.h"
#include "maps.h"
#include "parsing.h"
#include "jhash.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Put struct vrrp_event, struct vrrp_hdr and the enums into BTF for
 * bpf2go: the ring buffer has no value type, array keys must be plain
 * integers, the flags fields are plain bytes, and Go reads the header of
 * the message an event carries. */
const struct vrrp_event *unused_vrrp_event __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum svc_flag *unused_svc_flag __attribute__((unused));
const enum real_flag *unused_real_flag __attribute__((unused));
const enum tun_type *unused_tun_type __attribute__((unused));
const struct vrrp_hdr *unused_vrrp_hdr __attribute__((unused));

static __always_inline void count(enum counter idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline int drop(enum counter reason)
{
	count(reason);
	return XDP_DROP;
}

/* eq8 compares 8 bytes (clang has no memcmp for BPF). */
static __always_inline int eq8(const __u8 *a, const __u8 *b)
{
	__u64 x, y;

	__builtin_memcpy(&x, a, 8);
	__builtin_memcpy(&y, b, 8);
	return x == y;
}

static __always_inline int eq_mac(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
	       a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* csum_fold folds a partial sum to 16 bits; a message with a correct
 * checksum folds to CSUM_VALID (all ones). */
#define CSUM_VALID 0xffff
static __always_inline __u32 csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/* An advert being checked: what the IP header said (family, ttl, offsets,
 * addresses), then what check_vrrp decoded. Addresses are ADDR_LEN bytes,
 * IPv4 in the first IPV4_ADDR_LEN. */
struct vrrp_ctx {
	__u8 family;
	__u8 ttl;
	__u8 version;       /* decoded: 2 or 3 */
	__u8 pad;
	__u16 interval_cs;  /* decoded: the advert's interval, centiseconds */
	__u16 msg_len;      /* decoded: the message length its count implies */
	__u32 vrrp_off;     /* offset of the VRRP message in the frame */
	__u32 payload_len;  /* IP payload length from the IP header */
	struct vrid_key key;
	struct vrrp_hdr hdr;
	__u8 src[ADDR_LEN];
	__u8 dst[ADDR_LEN];
};

/* Each check returns CHECK_OK or the counter of its drop reason. */
#define CHECK_OK CNT_VRRP_VALID

/* check_header reads the fixed header and checks version and type (the
 * TTL is checked once the instance is known: unicast ones do not need
 * 255). */
static __always_inline enum counter check_header(struct xdp_md *ctx, struct vrrp_ctx *v)
{
	__u32 frame_len = ctx->data_end - ctx->data;

	if (v->payload_len < sizeof(v->hdr) || v->vrrp_off + v->payload_len > frame_len)
		return CNT_TRUNCATED;
	if (bpf_xdp_load_bytes(ctx, v->vrrp_off, &v->hdr, sizeof(v->hdr)) < 0)
		return CNT_TRUNCATED;
	v->version = v->hdr.vers_type >> VRRP_VERSION_SHIFT;
	if (v->version != VRRP_VERSION_2 && v->version != VRRP_VERSION_3)
		return CNT_VERSION;
	if (v->version == VRRP_VERSION_2 && v->family == FAMILY_V6) /* VRRPv2 is IPv4 only */
		return CNT_VERSION;
	if ((v->hdr.vers_type & VRRP_TYPE_MASK) != VRRP_TYPE_ADVERT)
		return CNT_TYPE;
	return CHECK_OK;
}

/* unknown_vrid says why no instance matched: the VRID is configured for
 * the other family only (family), or not at all (vrid). */
static __always_inline enum counter unknown_vrid(const struct vrrp_ctx *v)
{
	struct vrid_key other = v->key;

	other.family = v->family == FAMILY_V4 ? FAMILY_V6 : FAMILY_V4;
	return bpf_map_lookup_elem(&vrid_config, &other) ? CNT_FAMILY : CNT_VRID;
}

/* check_length checks the address count and that the IP payload is
 * exactly the message it implies. Same split as pkg/vrrp: shorter than
 * the count says is truncated, longer is a length error. */
static __always_inline enum counter check_length(struct vrrp_ctx *v, const struct vrid_cfg *cfg)
{
	__u32 alen = v->family == FAMILY_V4 ? IPV4_ADDR_LEN : IPV6_ADDR_LEN;
	__u32 need = sizeof(v->hdr) + (__u32)v->hdr.count * alen +
		     (v->version == VRRP_VERSION_2 ? VRRP_V2_AUTH_LEN : 0);

	if (v->hdr.count == 0 || (cfg->addr_count && v->hdr.count != cfg->addr_count) || need > VRRP_MAX_MSG)
		return CNT_ADDR_COUNT;
	if (v->payload_len < need)
		return CNT_TRUNCATED;
	if (v->payload_len > need)
		return CNT_LENGTH;
	v->msg_len = need;
	return CHECK_OK;
}

/* pseudo_sum is the v3 pseudo-header's partial sum, or a negative error
 * from bpf_csum_diff. */
static __always_inline __s64 pseudo_sum(const struct vrrp_ctx *v)
{
	if (v->family == FAMILY_V4) {
		struct pseudo4 ph = {};

		__builtin_memcpy(&ph.src, v->src, IPV4_ADDR_LEN);
		__builtin_memcpy(&ph.dst, v->dst, IPV4_ADDR_LEN);
		ph.proto = IPPROTO_VRRP;
		ph.len = bpf_htons(v->msg_len);
		return bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	}
	struct pseudo6 ph = {};

	__builtin_memcpy(ph.src, v->src, IPV6_ADDR_LEN);
	__builtin_memcpy(ph.dst, v->dst, IPV6_ADDR_LEN);
	ph.len = bpf_htonl(v->msg_len);
	ph.next_header = IPPROTO_VRRP;
	return bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
}

/* msg_chunk returns the length of chunk i (CSUM_CHUNK bytes at offset
 * i * CSUM_CHUNK) of v's message, 0 past its end. The result is masked
 * into [1, CSUM_CHUNK] after a compiler barrier, so that every verifier
 * (6.1's does not carry a bound checked on one copy of a spilled value to
 * another) sees the bound in whatever register the length lands in. */
static __always_inline __u64 msg_chunk(const struct vrrp_ctx *v, __u32 i)
{
	__u64 off = (__u64)i * CSUM_CHUNK, len;

	if (v->msg_len <= off)
		return 0;
	len = v->msg_len - off;
	if (len > CSUM_CHUNK)
		len = CSUM_CHUNK;
	barrier_var(len);
	return ((len - 1) & (CSUM_CHUNK - 1)) + 1;
}

/* load_msg copies v's message into dst (VRRP_MAX_MSG bytes: the scratch
 * buffer or a ring-buffer record) one chunk at a time; < 0 on failure. */
static __always_inline int load_msg(struct xdp_md *ctx, const struct vrrp_ctx *v, __u8 *dst)
{
#pragma unroll
	for (__u32 i = 0; i < CSUM_CHUNKS; i++) {
		__u32 off = i * CSUM_CHUNK;
		__u64 len = msg_chunk(v, i);

		if (len == 0)
			break;
		if (bpf_xdp_load_bytes(ctx, v->vrrp_off + off, dst + off, len) < 0)
			return -1;
	}
	return 0;
}

/* check_checksum verifies the message's checksum (v3: with the
 * pseudo-header). The message is copied into the scratch buffer and
 * summed one CSUM_CHUNK at a time, each call's result checked: a failing
 * helper is a checksum drop, never a pass. */
static __always_inline enum counter check_checksum(struct xdp_md *ctx, const struct vrrp_ctx *v)
{
	__u32 zero = 0;
	struct scratch_buf *s = bpf_map_lookup_elem(&scratch, &zero);
	__s64 sum = 0;

	if (!s)
		return CNT_CHECKSUM;
	if (load_msg(ctx, v, s->buf) < 0)
		return CNT_TRUNCATED;
	if (v->version == VRRP_VERSION_3) {
		sum = pseudo_sum(v);
		if (sum < 0)
			return CNT_CHECKSUM;
	}
#pragma unroll
	for (__u32 i = 0; i < CSUM_CHUNKS; i++) {
		__u64 len = msg_chunk(v, i);

		if (len == 0)
			break;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)(s->buf + i * CSUM_CHUNK), len, (__wsum)sum);
		if (sum < 0)
			return CNT_CHECKSUM;
	}
	return csum_fold(sum) == CSUM_VALID ? CHECK_OK : CNT_CHECKSUM;
}

/* check_auth_interval checks v2's authentication and interval against the
 * configuration and v3's interval (non-zero), and decodes the interval. */
static __always_inline enum counter check_auth_interval(struct xdp_md *ctx, struct vrrp_ctx *v,
							const struct vrid_cfg *cfg)
{
	if (v->version == VRRP_VERSION_3) {
		v->interval_cs = bpf_ntohs(v->hdr.max_adver_int) & VRRP_V3_INTERVAL_MASK;
		return v->interval_cs ? CHECK_OK : CNT_INTERVAL;
	}
	if (v->hdr.v2.auth_type != cfg->auth_type)
		return CNT_AUTH_TYPE;
	if (cfg->auth_type == VRRP_AUTH_PASS) {
		__u8 pw[VRRP_V2_AUTH_LEN];

		if (bpf_xdp_load_bytes(ctx, v->vrrp_off + v->msg_len - VRRP_V2_AUTH_LEN, pw, sizeof(pw)) < 0)
			return CNT_TRUNCATED;
		if (!eq8(pw, cfg->auth))
			return CNT_AUTH;
	}
	v->interval_cs = (__u16)v->hdr.v2.adver_int * CS_PER_SECOND;
	if (cfg->interval_cs && v->interval_cs != cfg->interval_cs)
		return CNT_INTERVAL;
	return CHECK_OK;
}

/* check_peer applies the unicast-peer allow-list and the peer's TTL range
 * (keepalived's vrrp_check_packet: min_ttl / max_ttl, after the source). */
static __always_inline enum counter check_peer(const struct vrrp_ctx *v, const struct vrid_cfg *cfg)
{
	struct peer_key pk = {};
	struct peer_ttl *t;

	if (cfg->any_peer)
		return CHECK_OK;
	pk.vrid = v->key.vrid;
	pk.family = v->key.family;
	__builtin_memcpy(pk.addr, v->src, ADDR_LEN);
	t = bpf_map_lookup_elem(&vrrp_peers, &pk);
	if (!t)
		return CNT_UNICAST_PEER;
	if (v->ttl < t->min_ttl || v->ttl > t->max_ttl)
		return CNT_TTL;
	return CHECK_OK;
}

/* check_vrrp validates an advert whose IP header has been read and returns
 * CNT_VRRP_VALID or the drop reason, in this order: truncated, version,
 * type, ttl (not 255: unless the instance is unicast, RFC 5798 5.1.1.3 as
 * keepalived applies it; an advert for no instance counts here too),
 * vrid/family, version (vs. the instance), addr_count, truncated, length,
 * checksum, auth_type, auth, interval, unicast_peer, ttl (outside the
 * unicast peer's min_ttl / max_ttl). */
static __always_inline enum counter check_vrrp(struct xdp_md *ctx, struct vrrp_ctx *v)
{
	struct vrid_cfg *cfg;
	enum counter c;

	c = check_header(ctx, v);
	if (c != CHECK_OK)
		return c;
	v->key.vrid = v->hdr.vrid;
	v->key.family = v->family;
	cfg = bpf_map_lookup_elem(&vrid_config, &v->key);
	if ((!cfg || cfg->any_peer) && v->ttl != VRRP_TTL)
		return CNT_TTL;
	if (!cfg)
		return unknown_vrid(v);
	if (cfg->version != v->version)
		return CNT_VERSION;
	c = check_length(v, cfg);
	if (c != CHECK_OK)
		return c;
	c = check_checksum(ctx, v);
	if (c != CHECK_OK)
		return c;
	c = check_auth_interval(ctx, v, cfg);
	if (c != CHECK_OK)
		return c;
	return check_peer(v, cfg);
}

/* record_advert remembers a valid advert in vrrp_peer_state and sends it
 * to Go on vrrp_events (counting ringbuf_full when the ring is full). */
static __always_inline void record_advert(struct xdp_md *ctx, const struct vrrp_ctx *v)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	struct vrrp_peer *p = bpf_map_lookup_elem(&vrrp_peer_state, &v->key);

	if (p) {
		__builtin_memcpy(p->src, v->src, ADDR_LEN);
		p->priority = v->hdr.priority;
		p->version = v->version;
		p->interval_cs = v->interval_cs;
		p->last_seen_ns = now;
		__sync_fetch_and_add(&p->count, 1);
	} else {
		struct vrrp_peer np = {};

		__builtin_memcpy(np.src, v->src, ADDR_LEN);
		np.priority = v->hdr.priority;
		np.version = v->version;
		np.interval_cs = v->interval_cs;
		np.last_seen_ns = now;
		np.count = 1;
		bpf_map_update_elem(&vrrp_peer_state, &v->key, &np, BPF_ANY);
	}

	struct vrrp_event *ev = bpf_ringbuf_reserve(&vrrp_events, sizeof(*ev), 0);

	if (!ev) {
		count(CNT_RINGBUF_FULL);
		return;
	}
	ev->ktime_ns = now;
	ev->vrid = v->key.vrid;
	ev->family = v->key.family;
	ev->version = v->version;
	ev->priority = v->hdr.priority;
	ev->interval_cs = v->interval_cs;
	ev->payload_len = v->msg_len;
	__builtin_memcpy(ev->src, v->src, ADDR_LEN);
	__builtin_memcpy(ev->dst, v->dst, ADDR_LEN);
	if (load_msg(ctx, v, ev->payload) < 0)
		ev->payload_len = 0; /* Go rejects an event without its message */
	bpf_ringbuf_submit(ev, 0);
}

/* handle_vrrp is the one place that counts and drops an advert: every
 * advert, valid or not, is counted once under check_vrrp's verdict. */
static __always_inline int handle_vrrp(struct xdp_md *ctx, struct vrrp_ctx *v)
{
	enum counter c = check_vrrp(ctx, v);

	if (c == CNT_VRRP_VALID)
		record_advert(ctx, v);
	return drop(c);
}

/* handle_vrrp4 and handle_vrrp6 fill the context from the IP header the
 * cursor has just passed. An IPv4 header whose length is bad (parsed is
 * 0) or exceeds the total length, or a fragment (MF or an offset: an
 * advert is never fragmented at the sizes the program accepts), leaves
 * payload_len 0: check_vrrp counts that as truncated. */
static __always_inline int handle_vrrp4(struct xdp_md *ctx, const struct cursor *c, void *data,
					const struct iphdr *ip, int parsed)
{
	struct vrrp_ctx v = {.family = FAMILY_V4, .ttl = ip->ttl};
	__u32 hlen = ip->ihl * IPV4_IHL_UNIT;
	__u32 tot = bpf_ntohs(ip->tot_len);

	__builtin_memcpy(v.src, &ip->saddr, IPV4_ADDR_LEN);
	__builtin_memcpy(v.dst, &ip->daddr, IPV4_ADDR_LEN);
	if (parsed && tot >= hlen && !(ip->frag_off & bpf_htons(IPV4_MF | IPV4_FRAG_OFFSET_MASK))) {
		v.vrrp_off = (__u32)(c->pos - data);
		v.payload_len = tot - hlen;
	}
	return handle_vrrp(ctx, &v);
}

/* The cursor has passed the extension headers, if any: the VRRP payload
 * is the IPv6 payload less their length (0 if they claim more: truncated).
 * A fragment of an advert is counted as truncated. */
static __always_inline int handle_vrrp6(struct xdp_md *ctx, const struct cursor *c, void *data,
					const struct ipv6hdr *ip6, __u8 frag)
{
	struct vrrp_ctx v = {.family = FAMILY_V6, .ttl = ip6->hop_limit};
	__u32 ext = (__u32)(c->pos - (void *)(ip6 + 1));
	__u32 plen = bpf_ntohs(ip6->payload_len);

	__builtin_memcpy(v.src, &ip6->saddr, IPV6_ADDR_LEN);
	__builtin_memcpy(v.dst, &ip6->daddr, IPV6_ADDR_LEN);
	v.vrrp_off = (__u32)(c->pos - data);
	if (!frag && plen >= ext)
		v.payload_len = plen - ext;
	return handle_vrrp(ctx, &v);
}

/* A TCP/UDP frame that may be virtual-server traffic. */
struct flow_ctx {
	struct flow_key fk;     /* 5-tuple; ports 0 for a fragment */
	__u32 pkt_len;
	__u8 frag;              /* FRAG_NONE, FRAG_FIRST or FRAG_LATER */
	__u8 vlans;             /* 802.1Q tags the frame came with (0-2) */
	/* What TUN encapsulation copies from the IP header. */
	__u8 tos;               /* IPv4 TOS / IPv6 traffic class */
	__u8 ttl;               /* TTL / hop limit */
	__u32 ip_len;           /* the IP packet's length by its header */
	__be16 ip_id;           /* IPv4 identification */
	__u8 df;                /* IPv4 Don't Fragment */
	__u8 pad;
};

static __always_inline __u32 fold_addr(const __u8 *a, __u8 family)
{
	__u32 w[ADDR_LEN / sizeof(__u32)];

	__builtin_memcpy(w, a, ADDR_LEN);
	if (family == FAMILY_V4)
		return w[0];
	return w[0] ^ w[1] ^ w[2] ^ w[3];
}

static __always_inline int real_usable(struct real *r, __u32 svc_id)
{
	return r && (r->flags & REAL_F_VALID) && r->svc_id == svc_id;
}

static __always_inline int is_our_mac(const __u8 *dst, const struct iface_config *ic, __u8 family)
{
	if (eq_mac(dst, ic->mac))
		return 1;
	/* VRRP virtual MAC: 00:00:5e:00:01:VRID (IPv4), 00:00:5e:00:02:VRID (IPv6) */
	__be32 prefix;

	__builtin_memcpy(&prefix, dst, VMAC_PREFIX_LEN);
	return prefix == bpf_htonl(VMAC_PREFIX) &&
	       dst[VMAC_PREFIX_LEN] == (family == FAMILY_V4 ? VMAC_FAMILY_V4 : VMAC_FAMILY_V6);
}

/* may_be_vip says whether addr (ADDR_LEN bytes) can have a service: its
 * bit in vip_filter (pkg/dataplane computes the same bit). */
static __always_inline int may_be_vip(const __u8 *addr, __u8 family)
{
	__u32 zero = 0, bit;
	struct vip_bitmap *vf = bpf_map_lookup_elem(&vip_filter, &zero);

	if (!vf)
		return 0;
	bit = (fold_addr(addr, family) * VIP_FILTER_MULT) >> (32 - VIP_FILTER_SHIFT);
	return (vf->bits[(bit / 64) & (VIP_FILTER_WORDS - 1)] >> (bit % 64)) & 1;
}

static __always_inline int svc_key_eq(const struct svc_key *a, const struct svc_key *b)
{
	__u32 x[sizeof(*a) / sizeof(__u32)], y[sizeof(*b) / sizeof(__u32)];

	__builtin_memcpy(x, a, sizeof(x));
	__builtin_memcpy(y, b, sizeof(y));
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* flow_hit returns the real server of an established flow whose service
 * (sk) is active and not persistent, with the service in *svc and the
 * real's id in *real_id; NULL when there is none or it is not usable. The
 * service comes from services_by_id (an inlined array lookup) by the id
 * the flow recorded, checked against the frame's key. */
static __always_inline struct real *flow_hit(const struct flow_ctx *f, const struct svc_key *sk,
					     struct svc_value **svc, __u32 *real_id)
{
	struct flow_value *fv = bpf_map_lookup_elem(&flows, &f->fk);
	struct svc_slot *slot;
	struct real *r;
	__u32 sid;

	if (!fv)
		return NULL;
	sid = fv->svc_id;
	slot = bpf_map_lookup_elem(&services_by_id, &sid);
	if (!slot || slot->value.id != sid || !svc_key_eq(&slot->key, sk) ||
	    (slot->value.flags & (SVC_F_ACTIVE | SVC_F_PERSIST)) != SVC_F_ACTIVE)
		return NULL;
	*real_id = fv->real_id;
	r = bpf_map_lookup_elem(&reals, real_id);
	if (!real_usable(r, sid))
		return NULL;
	*svc = &slot->value;
	return r;
}

/* set_vlan gives a single-tagged or untagged frame the tagging real r is
 * reached with (struct real.vlan): the VID rewritten in place (PCP and DEI
 * kept), a tag pushed or popped. Double-tagged frames, and reals with
 * vlan 0, keep the tags they came with. On success the MACs still have to
 * be written at the (possibly moved) frame start, returned in *eth; < 0
 * when the frame cannot be changed. */
static __always_inline int set_vlan(struct xdp_md *ctx, const struct real *r, __u8 vlans,
				    struct ethhdr **eth)
{
	__u16 want = r->vlan;
	void *data, *end;

	if (want == 0 || vlans > 1)
		return 0;
	if (vlans == 1 && want != REAL_VLAN_UNTAGGED) {
		struct vlan_tag *t = (void *)(*eth + 1);

		if ((void *)(t + 1) > (void *)(long)ctx->data_end)
			return -1;
		t->tci = (t->tci & bpf_htons(~VLAN_VID_MASK)) | bpf_htons(want & VLAN_VID_MASK);
		return 0;
	}
	if (vlans == 0 && want == REAL_VLAN_UNTAGGED)
		return 0;
	if (vlans == 1) { /* pop: the EtherType moves to where the tag was */
		struct vlan_tag *t = (void *)(*eth + 1);
		__be16 proto;

		if ((void *)(t + 1) > (void *)(long)ctx->data_end)
			return -1;
		proto = t->proto;
		if (bpf_xdp_adjust_head(ctx, VLAN_HLEN))
			return -1;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		if (data + sizeof(struct ethhdr) > end)
			return -1;
		*eth = data;
		(*eth)->h_proto = proto;
		return 0;
	}
	/* push: a C-tag with the frame's EtherType, after the MACs */
	__be16 proto = (*eth)->h_proto;

	if (bpf_xdp_adjust_head(ctx, -VLAN_HLEN))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + sizeof(struct ethhdr) + sizeof(struct vlan_tag) > end)
		return -1;
	*eth = data;
	struct vlan_tag *t = (void *)(*eth + 1);

	(*eth)->h_proto = bpf_htons(ETH_P_8021Q);
	t->tci = bpf_htons(want & VLAN_VID_MASK);
	t->proto = proto;
	return 0;
}

/* sum32 adds n 32-bit words of stack memory at p to sum (n a constant):
 * a ones'-complement partial sum for csum_fold, in memory byte order like
 * bpf_csum_diff's. */
static __always_inline __u64 sum32(const void *p, int n, __u64 sum)
{
#pragma unroll
	for (int i = 0; i < n; i++) {
		__u32 w;

		/* memcpy, not a __u32 pointer: the words alias byte fields,
		 * which the compiler may otherwise store after the loads */
		__builtin_memcpy(&w, (const __u8 *)p + i * sizeof(w), sizeof(w));
		sum += w;
	}
	return sum;
}

/* csum_final is the checksum field for partial sum s. */
static __always_inline __u16 csum_final(__u64 s)
{
	return (__u16)~csum_fold(s);
}

/* frame_sum adds bytes [off, off + len) of the frame to sum (a
 * non-negative partial sum, folded by the caller) and returns it, < 0 on
 * failure. The bytes are
 * loaded into the scratch buffer CSUM_CHUNK at a time (bpf_csum_diff's
 * limit before Linux 6.13, and it takes whole 32-bit words: the last
 * word of an odd end is zero padded, as the checksum pads). Each length
 * is masked after a compiler barrier, as msg_chunk does for 6.1. */
static __always_inline __s64 frame_sum(struct xdp_md *ctx, __u32 off, __u32 len, __s64 sum)
{
	__u32 zero = 0;
	struct scratch_buf *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s || len > FRAME_SUM_MAX)
		return -1;
	/* the seed is 32 bits: end-around carry the higher ones in */
	sum = (sum & 0xffffffff) + ((__u64)sum >> 32);
	sum = (sum & 0xffffffff) + ((__u64)sum >> 32);
	/* Unrolled: as a loop, clang drops the chunk count for the length
	 * test, and 6.1's verifier, which lost the length's bound, walks
	 * it until "the sequence of 8193 jumps is too complex". */
#pragma unroll
	for (__u32 i = 0; i < FRAME_SUM_CHUNKS; i++) {
		__u32 done = i * CSUM_CHUNK;
		__u64 n, words;

		if (done >= len)
			break;
		n = len - done;
		if (n > CSUM_CHUNK)
			n = CSUM_CHUNK;
		barrier_var(n);
		n = ((n - 1) & (CSUM_CHUNK - 1)) + 1;
		words = (n + 3) & (2 * CSUM_CHUNK - 4);
		*(__u32 *)(s->buf + (n & (2 * CSUM_CHUNK - 4))) = 0;
		if (bpf_xdp_load_bytes(ctx, off + done, s->buf, n) < 0)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->buf, words, (__wsum)sum);
		if (sum < 0)
			return -1;
	}
	return sum;
}

/* An Ethernet header with up to VLAN_MAX_DEPTH tags as built for
 * output: the tags (TPID, TCI pairs), then the EtherType. */
struct l2hdr {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 w[1 + 2 * (VLAN_MAX_DEPTH + 1)];
};

/* l2_len is the length of the frame's Ethernet header and tags. */
static __always_inline __u32 l2_len(const struct flow_ctx *f)
{
	return ETH_HLEN + VLAN_HLEN * (f->vlans & 3);
}

/* The fixed part of ICMP "fragmentation needed" (RFC 792, the next-hop
 * MTU of RFC 1191) and ICMPv6 Packet Too Big (RFC 4443 3.2). */
struct icmp_too_big {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be32 mtu;             /* IPv4: 16 unused bits, then the MTU */
};

/* icmp_too_big answers the client, in place and with XDP_TX, that the
 * packet is too big for the tunnel: the frame (its tags kept, its MACs
 * swapped) becomes an ICMP from the VIP quoting the packet's start
 * (IPv4: up to 576 bytes of ICMP; IPv6: up to the minimum MTU). */
static __always_inline int icmp_too_big(struct xdp_md *ctx, const struct flow_ctx *f, __u32 limit)
{
	__u32 l2len = l2_len(f), quote = f->ip_len, frame_len, hlen;
	struct icmp_too_big icmp = {};
	struct l2hdr l2 = {};
	__u8 mac[ETH_ALEN];
	__s64 sum;
	enum counter sent;
	union {
		struct {
			struct iphdr ip;
			struct icmp_too_big icmp;
		} v4;
		struct {
			struct ipv6hdr ip6;
			struct icmp_too_big icmp;
		} v6;
	} h = {};

	if (bpf_xdp_load_bytes(ctx, 0, &l2, l2len) < 0)
		return drop(CNT_TUN_TOO_BIG_DROP);
	__builtin_memcpy(mac, l2.dst, ETH_ALEN);
	__builtin_memcpy(l2.dst, l2.src, ETH_ALEN);
	__builtin_memcpy(l2.src, mac, ETH_ALEN);
	if (f->fk.family == FAMILY_V4) {
		if (quote > ICMP4_QUOTE_MAX)
			quote = ICMP4_QUOTE_MAX;
		icmp.type = ICMP4_DEST_UNREACH;
		icmp.code = ICMP4_FRAG_NEEDED;
		icmp.mtu = bpf_htonl(limit & 0xffff);
		sum = frame_sum(ctx, l2len, quote, sum32(&icmp, 2, 0));
		if (sum < 0)
			return drop(CNT_TUN_TOO_BIG_DROP);
		icmp.checksum = csum_final(sum);
		h.v4.icmp = icmp;
		h.v4.ip.version = 4;
		h.v4.ip.ihl = sizeof(struct iphdr) / IPV4_IHL_UNIT;
		h.v4.ip.tos = ICMP4_TOS;
		h.v4.ip.tot_len = bpf_htons(sizeof(h.v4) + quote);
		h.v4.ip.frag_off = bpf_htons(IPV4_DF);
		h.v4.ip.ttl = ICMP_TTL;
		h.v4.ip.protocol = IPPROTO_ICMP_V4;
		__builtin_memcpy(&h.v4.ip.saddr, f->fk.dst, IPV4_ADDR_LEN);
		__builtin_memcpy(&h.v4.ip.daddr, f->fk.src, IPV4_ADDR_LEN);
		h.v4.ip.check = csum_final(sum32(&h.v4.ip, 5, 0));
		hlen = sizeof(h.v4);
		sent = CNT_TUN_ICMP4_TOO_BIG;
	} else {
		struct pseudo6 ph = {};

		if (quote > ICMP6_QUOTE_MAX)
			quote = ICMP6_QUOTE_MAX;
		icmp.type = ICMP6_PKT_TOO_BIG;
		icmp.mtu = bpf_htonl(limit);
		__builtin_memcpy(ph.src, f->fk.dst, IPV6_ADDR_LEN);
		__builtin_memcpy(ph.dst, f->fk.src, IPV6_ADDR_LEN);
		ph.len = bpf_htonl(sizeof(icmp) + quote);
		ph.next_header = IPPROTO_ICMP_V6;
		sum = frame_sum(ctx, l2len, quote, sum32(&icmp, 2, sum32(&ph, sizeof(ph) / 4, 0)));
		if (sum < 0)
			return drop(CNT_TUN_TOO_BIG_DROP);
		icmp.checksum = csum_final(sum);
		h.v6.icmp = icmp;
		h.v6.ip6.version = 6;
		h.v6.ip6.payload_len = bpf_htons(sizeof(icmp) + quote);
		h.v6.ip6.nexthdr = IPPROTO_ICMP_V6;
		h.v6.ip6.hop_limit = ICMP_TTL;
		__builtin_memcpy(&h.v6.ip6.saddr, f->fk.dst, IPV6_ADDR_LEN);
		__builtin_memcpy(&h.v6.ip6.daddr, f->fk.src, IPV6_ADDR_LEN);
		hlen = sizeof(h.v6);
		sent = CNT_TUN_ICMP6_TOO_BIG;
	}
	frame_len = bpf_xdp_get_buff_len(ctx); /* with any fragments (test_run makes them) */
	if (bpf_xdp_adjust_tail(ctx, (int)(l2len + quote) - (int)frame_len))
		return drop(CNT_TUN_TOO_BIG_DROP);
	if (bpf_xdp_adjust_head(ctx, -(int)hlen))
		return drop(CNT_TUN_TOO_BIG_DROP);
	if (bpf_xdp_store_bytes(ctx, 0, &l2, l2len) < 0)
		return drop(CNT_TUN_TOO_BIG_DROP);
	if (f->fk.family == FAMILY_V4) {
		if (bpf_xdp_store_bytes(ctx, l2len, &h.v4, sizeof(h.v4)) < 0)
			return drop(CNT_TUN_TOO_BIG_DROP);
	} else if (bpf_xdp_store_bytes(ctx, l2len, &h.v6, sizeof(h.v6)) < 0) {
		return drop(CNT_TUN_TOO_BIG_DROP);
	}
	count(sent);
	return XDP_TX;
}

/* tun_too_big handles a packet that does not fit the tunnel's path MTU
 * with limit bytes left for it: IPv4 with DF and IPv6 (not a later
 * fragment) are answered with ICMP; the rest is dropped, counted: IPVS
 * would fragment an IPv4 packet without DF (the outer packet), which XDP
 * cannot, and sends nothing for a later IPv6 fragment either. */
static __always_inline int tun_too_big(struct xdp_md *ctx, const struct flow_ctx *f, __u32 limit)
{
	if (f->fk.family == FAMILY_V4 ? !f->df || limit < IPV4_MIN_MTU
				      : f->frag == FRAG_LATER || limit < IPV6_MIN_MTU)
		return drop(CNT_TUN_TOO_BIG_DROP);
	return icmp_too_big(ctx, f, limit);
}

/* What follows a TUN frame's outer IP header: for GUE the UDP header
 * and the GUE header (version 0, no options: its second byte is
 * proto_ctype); for GRE (RFC 2784) flags and version (0, or the checksum
 * flag), the protocol (an EtherType), and with the checksum flag the
 * checksum and a reserved word; nothing for IP-in-IP. */
struct gue_hdr {
	__u8 ver_c_hlen;
	__u8 proto_ctype;
	__be16 flags;
};
struct gre_hdr {
	__be16 flags;
	__be16 proto;
	__u16 csum;
	__be16 reserved;
};
union tun_hdr {
	struct {
		struct udphdr udp;
		struct gue_hdr gue;
	} g;
	struct gre_hdr gre;
};
struct outer4 {
	struct iphdr ip;
	union tun_hdr t;
};
struct outer6 {
	struct ipv6hdr ip6;
	union tun_hdr t;
};

/* tun_hdr_len is the length of r's union tun_hdr part. */
static __always_inline __u32 tun_hdr_len(const struct real *r)
{
	if (r->tun_type == TUN_GUE)
		return sizeof(struct udphdr) + GUE_HLEN;
	if (r->tun_type == TUN_GRE)
		return (r->flags & REAL_F_TUN_CSUM) ? GRE_HLEN_CSUM : GRE_HLEN;
	return 0;
}

/* tun_sport is the outer UDP source port of a GUE frame: a hash of the
 * flow scaled into Linux's default local port range, as
 * udp_flow_src_port() does (the flow's fragments hash with ports 0). */
static __always_inline __be16 tun_sport(const struct flow_ctx *f)
{
	__u32 h = jhash_3words(fold_addr(f->fk.src, f->fk.family),
			       ((__u32)f->fk.sport << 16) | f->fk.dport,
			       fold_addr(f->fk.dst, f->fk.family) ^ f->fk.proto, HASH_SEED);

	h ^= h << 16;
	return bpf_htons((__u16)(((__u64)h * (TUN_SPORT_MAX - TUN_SPORT_MIN)) >> 32) + TUN_SPORT_MIN);
}

/* tun_l2 builds the outer frame's Ethernet header: to the next hop, from
 * this interface, tagged as struct real.vlan says (0: the tags the frame
 * came with; REAL_VLAN_UNTAGGED: none; a VID: one C-tag, priority and DEI
 * of the frame's outer tag kept). Returns its length, 0 on failure. */
static __always_inline __u32 tun_l2(struct xdp_md *ctx, const struct real *r, const struct flow_ctx *f,
				    const __u8 *own, struct l2hdr *l2)
{
	__u32 tags = 0;
	__be16 etype = bpf_htons(r->family == FAMILY_V4 ? ETH_P_IP : ETH_P_IPV6);

	__builtin_memcpy(l2->dst, r->mac, ETH_ALEN);
	__builtin_memcpy(l2->src, own, ETH_ALEN);
	if (r->vlan == 0 && f->vlans) {
		tags = f->vlans > 1 ? 2 : 1;
		if (bpf_xdp_load_bytes(ctx, 2 * ETH_ALEN, l2->w, tags * VLAN_HLEN) < 0)
			return 0;
	} else if (r->vlan != 0 && r->vlan != REAL_VLAN_UNTAGGED) {
		__be16 tci = 0;

		if (f->vlans && bpf_xdp_load_bytes(ctx, ETH_HLEN, &tci, sizeof(tci)) < 0)
			return 0;
		tags = 1;
		l2->w[0] = bpf_htons(ETH_P_8021Q);
		l2->w[1] = (tci & bpf_htons(~VLAN_VID_MASK)) | bpf_htons(r->vlan & VLAN_VID_MASK);
	}
	if (tags == 0)
		l2->w[0] = etype;
	else if (tags == 1)
		l2->w[2] = etype;
	else
		l2->w[4] = etype;
	return ETH_HLEN + tags * VLAN_HLEN;
}

/* tun_hdr builds r's union tun_hdr for an inner packet of inner bytes at
 * the frame's offset l2len and returns the outer IP protocol, < 0 on
 * failure. With REAL_F_TUN_CSUM (GUE, GRE) the checksum covers the
 * inner packet: GUE's UDP one with its pseudo-header (a zero result sent
 * as 0xffff), GRE's its header and the payload. */
static __always_inline int tun_hdr(struct xdp_md *ctx, const struct real *r, const struct flow_ctx *f,
				   __u32 l2len, __u32 inner, union tun_hdr *t)
{
	__u8 inner_proto = f->fk.family == FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u8 csum = r->tun_type != TUN_IPIP && (r->flags & REAL_F_TUN_CSUM);
	__u16 udp_len = sizeof(struct udphdr) + GUE_HLEN + inner;
	__s64 sum = 0;

	if (r->tun_type == TUN_IPIP)
		return inner_proto;
	if (csum) {
		sum = frame_sum(ctx, l2len, inner, 0);
		if (sum < 0)
			return -1;
	}
	if (r->tun_type == TUN_GRE) {
		t->gre.flags = csum ? bpf_htons(GRE_F_CSUM) : 0;
		t->gre.proto = bpf_htons(f->fk.family == FAMILY_V4 ? ETH_P_IP : ETH_P_IPV6);
		if (csum)
			t->gre.csum = csum_final(sum32(&t->gre, sizeof(t->gre) / 4, sum));
		return IPPROTO_GRE;
	}
	t->g.udp.source = tun_sport(f);
	t->g.udp.dest = r->tun_port;
	t->g.udp.len = bpf_htons(udp_len);
	t->g.gue.proto_ctype = inner_proto;
	if (!csum)
		return IPPROTO_UDP;
	if (r->family == FAMILY_V4) {
		struct pseudo4 ph = {.proto = IPPROTO_UDP, .len = bpf_htons(udp_len)};

		__builtin_memcpy(&ph.src, r->tun_src, IPV4_ADDR_LEN);
		__builtin_memcpy(&ph.dst, r->addr, IPV4_ADDR_LEN);
		sum = sum32(&ph, sizeof(ph) / 4, sum);
	} else {
		struct pseudo6 ph = {.len = bpf_htonl(udp_len), .next_header = IPPROTO_UDP};

		__builtin_memcpy(ph.src, r->tun_src, IPV6_ADDR_LEN);
		__builtin_memcpy(ph.dst, r->addr, IPV6_ADDR_LEN);
		sum = sum32(&ph, sizeof(ph) / 4, sum);
	}
	t->g.udp.check = csum_final(sum32(&t->g, sizeof(t->g) / 4, sum)) ?: 0xffff;
	return IPPROTO_UDP;
}

/* tun_encap rewrites the frame into the TUN frame for real r, in place:
 * the outer Ethernet header (tun_l2), the outer IP header from the real's
 * tunnel source to its address (TTL or hop limit and TOS or traffic class
 * copied, ECN as the kernel's INET_ECN_encapsulate, DF and the
 * identification copied from an IPv4 inner packet, as IPVS does), the
 * tunnel's header (tun_hdr), then the IP packet byte for byte (trailing
 * Ethernet padding cut). < 0 when it cannot (the frame is then unchanged,
 * or broken only if a helper failed after the head moved). */
static __always_inline int tun_encap(struct xdp_md *ctx, const struct real *r, const struct flow_ctx *f,
				     const __u8 *own)
{
	__u32 l2len = l2_len(f), inner = f->ip_len, frame_len = bpf_xdp_get_buff_len(ctx), l2out, hlen;
	__u32 thlen = tun_hdr_len(r);
	__u8 tos = f->tos;
	struct l2hdr l2 = {};
	union tun_hdr th = {};
	int proto;
	union {
		struct outer4 v4;
		struct outer6 v6;
	} o = {};

	if (l2len + inner > frame_len)
		return -1;
	if ((tos & ECN_MASK) == ECN_CE)
		tos = (tos & ~ECN_MASK) | ECN_ECT0;
	proto = tun_hdr(ctx, r, f, l2len, inner, &th);
	if (proto < 0)
		return -1;
	if (r->family == FAMILY_V4) {
		struct iphdr *ip = &o.v4.ip;

		hlen = sizeof(*ip) + thlen;
		ip->version = 4;
		ip->ihl = sizeof(*ip) / IPV4_IHL_UNIT;
		ip->tos = tos;
		ip->tot_len = bpf_htons(hlen + inner);
		if (f->fk.family == FAMILY_V4) {
			ip->id = f->ip_id;
			ip->frag_off = f->df ? bpf_htons(IPV4_DF) : 0;
		} else {
			ip->id = (__be16)bpf_get_prandom_u32();
		}
		ip->ttl = f->ttl;
		ip->protocol = proto;
		__builtin_memcpy(&ip->saddr, r->tun_src, IPV4_ADDR_LEN);
		__builtin_memcpy(&ip->daddr, r->addr, IPV4_ADDR_LEN);
		ip->check = csum_final(sum32(ip, 5, 0));
		o.v4.t = th;
	} else {
		struct ipv6hdr *ip6 = &o.v6.ip6;
		__be32 vtc = bpf_htonl((6 << 28) | ((__u32)tos << 20));

		hlen = sizeof(*ip6) + thlen;
		__builtin_memcpy(ip6, &vtc, sizeof(vtc));
		ip6->payload_len = bpf_htons(thlen + inner);
		ip6->nexthdr = proto;
		ip6->hop_limit = f->ttl;
		__builtin_memcpy(&ip6->saddr, r->tun_src, IPV6_ADDR_LEN);
		__builtin_memcpy(&ip6->daddr, r->addr, IPV6_ADDR_LEN);
		o.v6.t = th;
	}
	l2out = tun_l2(ctx, r, f, own, &l2);
	if (l2out == 0)
		return -1;
	if (frame_len > l2len + inner && bpf_xdp_adjust_tail(ctx, (int)(l2len + inner) - (int)frame_len))
		return -1;
	if (bpf_xdp_adjust_head(ctx, (int)l2len - (int)(l2out + hlen)))
		return -1;
	if (bpf_xdp_store_bytes(ctx, 0, &l2, l2out) < 0)
		return -1;
	if (r->family == FAMILY_V4)
		return bpf_xdp_store_bytes(ctx, l2out, &o.v4, hlen);
	return bpf_xdp_store_bytes(ctx, l2out, &o.v6, hlen);
}

/* tun_forward sends a frame to a TUN real server: encapsulated when it
 * fits the path MTU, else answered or dropped by tun_too_big. */
static __always_inline int tun_forward(struct xdp_md *ctx, const struct real *r, const struct flow_ctx *f,
				       const struct iface_config *ic)
{
	__u32 overhead = (r->family == FAMILY_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr)) + tun_hdr_len(r);
	__u32 ifindex = r->ifindex, frame_len = bpf_xdp_get_buff_len(ctx);

	/* An IP header that claims more than the frame holds, or less than
	 * itself: the kernel's to drop, neither encapsulated nor answered.
	 * (The frame's length with any fragments: prog.Run makes them for
	 * frames above a page; drivers do not for a program without
	 * BPF_F_XDP_HAS_FRAGS.) */
	if (l2_len(f) + f->ip_len > frame_len ||
	    f->ip_len < (f->fk.family == FAMILY_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr))) {
		count(CNT_FWD_NO_REAL);
		return XDP_PASS;
	}
	if (r->mtu && f->ip_len + overhead > r->mtu)
		return tun_too_big(ctx, f, r->mtu > overhead ? r->mtu - overhead : 0);
	if (tun_encap(ctx, r, f, ic->mac) < 0) {
		count(CNT_FWD_NO_REAL);
		return XDP_PASS;
	}
	if (ifindex && ifindex != ic->ifindex) {
		count(CNT_FWD_REDIRECT);
		return bpf_redirect(ifindex, 0);
	}
	count(CNT_FWD_TX);
	return XDP_TX;
}

static __always_inline int handle_fwd(struct xdp_md *ctx, struct ethhdr *eth, struct flow_ctx *f)
{
	__u32 zero = 0;
	struct iface_config *ic = bpf_map_lookup_elem(&iface, &zero);
	struct svc_key sk = {};
	struct svc_value *svc;
	struct real *r = NULL;
	__u32 real_id = 0, new_flow = 0;

	if (!ic || !is_our_mac(eth->h_dest, ic, f->fk.family))
		return XDP_PASS;
	if (f->frag) {
		struct frag_key fk = {.proto = f->fk.proto, .family = f->fk.family};

		__builtin_memcpy(fk.addr, f->fk.dst, ADDR_LEN);
		svc = bpf_map_lookup_elem(&frag_services, &fk);
	} else {
		__builtin_memcpy(sk.addr, f->fk.dst, ADDR_LEN);
		sk.port = f->fk.dport;
		sk.proto = f->fk.proto;
		sk.family = f->fk.family;
		r = flow_hit(f, &sk, &svc, &real_id);
		if (r)
			goto forward;
		svc = bpf_map_lookup_elem(&services, &sk);
	}
	/* SVC_F_ACTIVE: Go's mirror of vip_state (SetVIPActive). */
	if (!svc || !(svc->flags & SVC_F_ACTIVE) || svc->ring_size == 0)
		return XDP_PASS;

	__u64 now = 0;
	struct persist_key pk = {};
	struct persist_value *pv = NULL;

	if (svc->flags & SVC_F_PERSIST) {
		now = bpf_ktime_get_coarse_ns(); /* only persistence needs the time (seconds) */
		pk.svc_id = svc->id;
		__builtin_memcpy(pk.client, f->fk.src, ADDR_LEN);
		pv = bpf_map_lookup_elem(&persist, &pk);
		if (pv && now - pv->last_seen_ns <= (__u64)svc->persist_timeout_s * NSEC_PER_SEC) {
			real_id = pv->real_id;
			r = bpf_map_lookup_elem(&reals, &real_id);
			if (real_usable(r, svc->id))
				pv->last_seen_ns = now;
			else
				r = NULL;
		}
	}
	/* A flow's entry, if any, was tried by flow_hit: from here on a new
	 * choice, which replaces it. */

	if (!r) {
		__u32 h, idx, *rid;
		void *ring;

		/* Fragments: the client's address, as sh does, so that every
		 * fragment of a datagram (only the first has ports) goes to the
		 * same real server. */
		if (f->frag || (svc->flags & (SVC_F_HASH_SRC | SVC_F_PERSIST)))
			h = jhash_3words(fold_addr(f->fk.src, f->fk.family), 0, f->fk.family, HASH_SEED);
		else
			h = jhash_3words(fold_addr(f->fk.src, f->fk.family),
					 ((__u32)f->fk.sport << 16) | f->fk.dport,
					 fold_addr(f->fk.dst, f->fk.family) ^ f->fk.proto, HASH_SEED);
		idx = h % svc->ring_size;
		ring = bpf_map_lookup_elem(&maglev_tables, &svc->id);
		if (!ring)
			goto no_real;
		rid = bpf_map_lookup_elem(ring, &idx);
		if (!rid)
			goto no_real;
		real_id = *rid;
		r = bpf_map_lookup_elem(&reals, &real_id);
		if (!real_usable(r, svc->id))
			goto no_real;
		new_flow = !f->frag;
		if (svc->flags & SVC_F_PERSIST) {
			struct persist_value npv = {.real_id = real_id, .last_seen_ns = now};

			bpf_map_update_elem(&persist, &pk, &npv, BPF_ANY);
		} else if (!f->frag) {
			struct flow_value nfv = {.real_id = real_id, .svc_id = svc->id};

			bpf_map_update_elem(&flows, &f->fk, &nfv, BPF_ANY);
		}
	}

forward:;
	struct real_counters *st = bpf_map_lookup_elem(&real_stats, &real_id);

	if (st) {
		st->packets++;
		st->bytes += f->pkt_len;
		st->new_flows += new_flow;
	}
	if (r->tun_type != TUN_NONE)
		return tun_forward(ctx, r, f, ic);
	__u8 mac[ETH_ALEN], own[ETH_ALEN];
	__u32 ifindex = r->ifindex;

	__builtin_memcpy(mac, r->mac, ETH_ALEN);
	__builtin_memcpy(own, ic->mac, ETH_ALEN);
	if (set_vlan(ctx, r, f->vlans, &eth) < 0)
		goto no_real;
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, own, ETH_ALEN);
	if (ifindex && ifindex != ic->ifindex) {
		count(CNT_FWD_REDIRECT);
		return bpf_redirect(ifindex, 0);
	}
	count(CNT_FWD_TX);
	return XDP_TX;

no_real:
	count(CNT_FWD_NO_REAL);
	return XDP_PASS;
}

SEC("xdp")
int xdp_vip(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct cursor c = {.pos = data, .end = (void *)(long)ctx->data_end};
	struct flow_ctx f = {};
	struct ethhdr *eth;
	int eth_proto, l4;

	eth_proto = parse_eth(&c, &eth);
	if (eth_proto < 0)
		return XDP_PASS;
	eth_proto = parse_vlans(&c, eth_proto, &f.vlans);
	if (eth_proto < 0)
		return XDP_PASS;

	if (eth_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;

		l4 = parse_ipv4(&c, &ip);
		if (l4 == PARSE_SHORT)
			return XDP_PASS;
		/* With PARSE_BAD_IHL the fixed header is there to read. */
		/* Tagged adverts belong to the VLAN device's instances, not this
		 * interface's: the kernel hands them to that device. */
		if (l4 == IPPROTO_VRRP || (l4 == PARSE_BAD_IHL && ip->protocol == IPPROTO_VRRP))
			return f.vlans ? XDP_PASS : handle_vrrp4(ctx, &c, data, ip, l4 == IPPROTO_VRRP);
		if ((l4 != IPPROTO_TCP && l4 != IPPROTO_UDP) || ip->version != 4)
			return XDP_PASS;
		/* Any fragment, first (MF) or not (offset): by 3-tuple. */
		if (ip->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK))
			f.frag = FRAG_LATER;
		else if (ip->frag_off & bpf_htons(IPV4_MF))
			f.frag = FRAG_FIRST;
		f.fk.family = FAMILY_V4;
		f.tos = ip->tos;
		f.ttl = ip->ttl;
		f.ip_len = bpf_ntohs(ip->tot_len);
		f.ip_id = ip->id;
		f.df = !!(ip->frag_off & bpf_htons(IPV4_DF));
		__builtin_memcpy(f.fk.src, &ip->saddr, IPV4_ADDR_LEN);
		__builtin_memcpy(f.fk.dst, &ip->daddr, IPV4_ADDR_LEN);
	} else if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;

		l4 = parse_ipv6(&c, &ip6);
		if (l4 < 0)
			return XDP_PASS;
		l4 = skip_ipv6_ext(&c, l4, &f.frag);
		if (l4 < 0) /* truncated, too many, or a routing header to follow */
			return XDP_PASS;
		if (l4 == IPPROTO_VRRP)
			return f.vlans ? XDP_PASS : handle_vrrp6(ctx, &c, data, ip6, f.frag);
		if ((l4 != IPPROTO_TCP && l4 != IPPROTO_UDP) || ip6->version != 6)
			return XDP_PASS;
		f.fk.family = FAMILY_V6;
		f.tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		f.ttl = ip6->hop_limit;
		f.ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(f.fk.src, &ip6->saddr, IPV6_ADDR_LEN);
		__builtin_memcpy(f.fk.dst, &ip6->daddr, IPV6_ADDR_LEN);
	} else {
		return XDP_PASS;
	}

	if (!may_be_vip(f.fk.dst, f.fk.family)) /* most frames leave here */
		return XDP_PASS;
	if (!f.frag && parse_ports(&c, l4, &f.fk.sport, &f.fk.dport) < 0)
		return XDP_PASS;
	f.fk.proto = l4;
	f.pkt_len = ctx->data_end - ctx->data;
	return handle_fwd(ctx, eth, &f);
}
