// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdp_vip.c: the xdpvip XDP program, one per interface.
 *
 *  - VRRP (IP protocol 112, IPv4 and IPv6): validate; a valid advert updates
 *    vrrp_peer_state, is sent to Go on vrrp_events and dropped; an invalid
 *    one is dropped and counted under its reason in counters.
 *  - TCP/UDP to a virtual server whose VIP is active (this node is MASTER)
 *    and addressed to our MAC or the VRRP virtual MAC: pick a real server
 *    (flow table, persistence table, else Maglev table), rewrite the MACs and
 *    send it with XDP_TX or redirect (LVS direct routing).
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

/* Put struct vrrp_event and enum counter into BTF for bpf2go: the ring
 * buffer has no value type and array keys must be plain integers. */
const struct vrrp_event *unused_vrrp_event __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));

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

static __always_inline __u32 csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/* Facts about the IP header the VRRP checks need. Addresses are 16 bytes,
 * IPv4 in the first 4. */
struct vrrp_ctx {
	__u8 family;
	__u8 ttl;
	__u16 pad;
	__u32 vrrp_off;     /* offset of the VRRP message in the frame */
	__u32 payload_len;  /* IP payload length from the IP header */
	__u8 src[16];
	__u8 dst[16];
};

/* handle_vrrp validates an advert whose IP header has been read.
 *
 * VRRP message layout (both versions, RFC 3768 §5.1, RFC 5798 §5.1):
 *   0: version(4 bits) type(4 bits)   1: VRID   2: priority   3: count
 *   v2: 4: auth type  5: advert interval (s)   6-7: checksum
 *   v3: 4-5: reserved(4 bits) max advert interval (12 bits, cs)   6-7: checksum
 *   8: count addresses (4 or 16 bytes each)
 *   v2 only: 8 bytes of authentication data after the addresses
 * The v2 checksum covers the message; v3's adds the IP pseudo-header.
 */
static __always_inline int handle_vrrp(struct xdp_md *ctx, struct vrrp_ctx *v)
{
	__u32 frame_len = ctx->data_end - ctx->data;
	__u8 hdr[VRRP_HDR_LEN];
	struct vrid_key key = {};
	struct vrid_cfg *cfg;
	__u32 alen, need, zero = 0;
	__u8 ver, type, cnt;
	__u16 interval_cs;
	struct scratch_buf *s;
	__u64 sum;

	if (v->payload_len < VRRP_HDR_LEN || v->vrrp_off + v->payload_len > frame_len)
		return drop(CNT_TRUNCATED);
	if (bpf_xdp_load_bytes(ctx, v->vrrp_off, hdr, sizeof(hdr)) < 0)
		return drop(CNT_TRUNCATED);
	if (v->ttl != VRRP_TTL)
		return drop(CNT_TTL);
	ver = hdr[0] >> 4;
	type = hdr[0] & 0x0f;
	if (ver != 2 && ver != 3)
		return drop(CNT_VERSION);
	if (ver == 2 && v->family == FAMILY_V6) /* VRRPv2 is IPv4 only */
		return drop(CNT_VERSION);
	if (type != VRRP_TYPE_ADVERT)
		return drop(CNT_TYPE);

	key.vrid = hdr[1];
	key.family = v->family;
	cfg = bpf_map_lookup_elem(&vrid_config, &key);
	if (!cfg) {
		key.family = v->family == FAMILY_V4 ? FAMILY_V6 : FAMILY_V4;
		if (bpf_map_lookup_elem(&vrid_config, &key))
			return drop(CNT_FAMILY);
		return drop(CNT_VRID);
	}
	if (cfg->version != ver)
		return drop(CNT_VERSION);

	cnt = hdr[3];
	alen = v->family == FAMILY_V4 ? 4 : 16;
	need = VRRP_HDR_LEN + (__u32)cnt * alen + (ver == 2 ? VRRP_V2_AUTH_LEN : 0);
	if (cnt == 0 || (cfg->addr_count && cnt != cfg->addr_count) || need > VRRP_MAX_MSG)
		return drop(CNT_ADDR_COUNT);
	/* Same split as pkg/vrrp: shorter than the count says is truncated,
	 * longer is a length error (the raw-socket path drops both). */
	if (v->payload_len < need)
		return drop(CNT_TRUNCATED);
	if (v->payload_len > need)
		return drop(CNT_LENGTH);

	s = bpf_map_lookup_elem(&scratch, &zero);
	barrier_var(need);
	if (!s)
		return XDP_DROP;
	if (ver == 2) {
		if (need > VRRP_MAX_MSG || bpf_xdp_load_bytes(ctx, v->vrrp_off, s->buf, need) < 0)
			return drop(CNT_TRUNCATED);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->buf, need, 0);
	} else if (v->family == FAMILY_V4) {
		/* pseudo-header: src(4) dst(4) zero(1) proto(1) length(2) */
		__builtin_memcpy(s->buf, v->src, 4);
		__builtin_memcpy(s->buf + 4, v->dst, 4);
		s->buf[8] = 0;
		s->buf[9] = IPPROTO_VRRP;
		s->buf[10] = need >> 8;
		s->buf[11] = need & 0xff;
		if (need > VRRP_MAX_MSG || bpf_xdp_load_bytes(ctx, v->vrrp_off, s->buf + PSEUDO4_LEN, need) < 0)
			return drop(CNT_TRUNCATED);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->buf, need + PSEUDO4_LEN, 0);
	} else {
		/* pseudo-header: src(16) dst(16) length(4) zero(3) next header(1) */
		__builtin_memcpy(s->buf, v->src, 16);
		__builtin_memcpy(s->buf + 16, v->dst, 16);
		s->buf[32] = 0;
		s->buf[33] = 0;
		s->buf[34] = need >> 8;
		s->buf[35] = need & 0xff;
		s->buf[36] = 0;
		s->buf[37] = 0;
		s->buf[38] = 0;
		s->buf[39] = IPPROTO_VRRP;
		if (need > VRRP_MAX_MSG || bpf_xdp_load_bytes(ctx, v->vrrp_off, s->buf + PSEUDO6_LEN, need) < 0)
			return drop(CNT_TRUNCATED);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->buf, need + PSEUDO6_LEN, 0);
	}
	if (csum_fold(sum) != 0xffff)
		return drop(CNT_CHECKSUM);

	if (ver == 2) {
		__u8 pw[VRRP_V2_AUTH_LEN];

		if (hdr[4] != cfg->auth_type)
			return drop(CNT_AUTH_TYPE);
		if (cfg->auth_type == VRRP_AUTH_PASS) {
			if (bpf_xdp_load_bytes(ctx, v->vrrp_off + need - VRRP_V2_AUTH_LEN, pw, sizeof(pw)) < 0)
				return drop(CNT_TRUNCATED);
			if (!eq8(pw, cfg->auth))
				return drop(CNT_AUTH);
		}
		interval_cs = (__u16)hdr[5] * 100;
		if (cfg->interval_cs && interval_cs != cfg->interval_cs)
			return drop(CNT_INTERVAL);
	} else {
		interval_cs = ((__u16)(hdr[4] & 0x0f) << 8) | hdr[5];
		if (interval_cs == 0)
			return drop(CNT_INTERVAL);
	}

	if (!cfg->any_peer) {
		struct peer_key pk = {};

		pk.vrid = key.vrid;
		pk.family = key.family;
		__builtin_memcpy(pk.addr, v->src, 16);
		if (!bpf_map_lookup_elem(&vrrp_peers, &pk))
			return drop(CNT_UNICAST_PEER);
	}

	/* Valid: remember the peer and tell Go. */
	__u64 now = bpf_ktime_get_ns();
	struct vrrp_peer *p = bpf_map_lookup_elem(&vrrp_peer_state, &key);

	if (p) {
		__builtin_memcpy(p->src, v->src, 16);
		p->priority = hdr[2];
		p->version = ver;
		p->interval_cs = interval_cs;
		p->last_seen_ns = now;
		__sync_fetch_and_add(&p->count, 1);
	} else {
		struct vrrp_peer np = {};

		__builtin_memcpy(np.src, v->src, 16);
		np.priority = hdr[2];
		np.version = ver;
		np.interval_cs = interval_cs;
		np.last_seen_ns = now;
		np.count = 1;
		bpf_map_update_elem(&vrrp_peer_state, &key, &np, BPF_ANY);
	}

	struct vrrp_event *ev = bpf_ringbuf_reserve(&vrrp_events, sizeof(*ev), 0);

	if (!ev) {
		count(CNT_RINGBUF_FULL);
		count(CNT_VRRP_VALID);
		return XDP_DROP;
	}
	ev->ktime_ns = now;
	ev->vrid = key.vrid;
	ev->family = key.family;
	ev->version = ver;
	ev->priority = hdr[2];
	ev->interval_cs = interval_cs;
	ev->payload_len = need;
	__builtin_memcpy(ev->src, v->src, 16);
	__builtin_memcpy(ev->dst, v->dst, 16);
	__u64 n = need;

	barrier_var(n); /* one 64-bit register, so the verifier sees the bound */
	if (n > sizeof(ev->payload) || bpf_xdp_load_bytes(ctx, v->vrrp_off, ev->payload, n) < 0)
		ev->payload_len = 0;
	bpf_ringbuf_submit(ev, 0);
	count(CNT_VRRP_VALID);
	return XDP_DROP;
}

/* A TCP/UDP frame that may be virtual-server traffic. */
struct flow_ctx {
	struct flow_key fk;     /* 5-tuple */
	__u32 pkt_len;
};

static __always_inline __u32 fold_addr(const __u8 *a, __u8 family)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
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
	return dst[0] == 0x00 && dst[1] == 0x00 && dst[2] == 0x5e && dst[3] == 0x00 &&
	       dst[4] == (family == FAMILY_V4 ? 0x01 : 0x02);
}

static __always_inline int handle_fwd(struct xdp_md *ctx, struct ethhdr *eth, struct flow_ctx *f)
{
	__u32 zero = 0;
	struct iface_config *ic = bpf_map_lookup_elem(&iface, &zero);
	struct vip_key vk = {};
	struct svc_key sk = {};
	struct svc_value *svc;
	struct real *r = NULL;
	__u32 real_id = 0, new_flow = 0;
	__u8 *active;

	if (!ic || !is_our_mac(eth->h_dest, ic, f->fk.family))
		return XDP_PASS;
	__builtin_memcpy(vk.addr, f->fk.dst, 16);
	vk.family = f->fk.family;
	active = bpf_map_lookup_elem(&vip_state, &vk);
	if (!active || !*active)
		return XDP_PASS;
	__builtin_memcpy(sk.addr, f->fk.dst, 16);
	sk.port = f->fk.dport;
	sk.proto = f->fk.proto;
	sk.family = f->fk.family;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc || svc->ring_size == 0)
		return XDP_PASS;

	__u64 now = bpf_ktime_get_ns();
	struct persist_key pk = {};
	struct persist_value *pv = NULL;

	if (svc->flags & SVC_F_PERSIST) {
		pk.svc_id = svc->id;
		__builtin_memcpy(pk.client, f->fk.src, 16);
		pv = bpf_map_lookup_elem(&persist, &pk);
		if (pv && now - pv->last_seen_ns <= (__u64)svc->persist_timeout_s * 1000000000ULL) {
			real_id = pv->real_id;
			r = bpf_map_lookup_elem(&reals, &real_id);
			if (real_usable(r, svc->id))
				pv->last_seen_ns = now;
			else
				r = NULL;
		}
	} else {
		struct flow_value *fv = bpf_map_lookup_elem(&flows, &f->fk);

		if (fv) {
			real_id = fv->real_id;
			r = bpf_map_lookup_elem(&reals, &real_id);
			if (!real_usable(r, svc->id))
				r = NULL;
		}
	}

	if (!r) {
		__u32 h, idx, *rid;
		void *ring;

		if (svc->flags & (SVC_F_HASH_SRC | SVC_F_PERSIST))
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
		new_flow = 1;
		if (svc->flags & SVC_F_PERSIST) {
			struct persist_value npv = {.real_id = real_id, .last_seen_ns = now};

			bpf_map_update_elem(&persist, &pk, &npv, BPF_ANY);
		} else {
			struct flow_value nfv = {.real_id = real_id, .svc_id = svc->id};

			bpf_map_update_elem(&flows, &f->fk, &nfv, BPF_ANY);
		}
	}

	struct real_counters *st = bpf_map_lookup_elem(&real_stats, &real_id);

	if (st) {
		st->packets++;
		st->bytes += f->pkt_len;
		st->new_flows += new_flow;
	}
	__builtin_memcpy(eth->h_dest, r->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ic->mac, ETH_ALEN);
	if (r->ifindex && r->ifindex != ic->ifindex) {
		count(CNT_FWD_REDIRECT);
		return bpf_redirect(r->ifindex, 0);
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

	if (eth_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = c.pos;

		if ((void *)(ip + 1) > c.end)
			return XDP_PASS;
		if (ip->protocol == IPPROTO_VRRP) {
			struct vrrp_ctx v = {};
			__u32 hlen = ip->ihl * 4;
			__u32 tot = bpf_ntohs(ip->tot_len);

			v.family = FAMILY_V4;
			v.ttl = ip->ttl;
			__builtin_memcpy(v.src, &ip->saddr, 4);
			__builtin_memcpy(v.dst, &ip->daddr, 4);
			if (hlen < sizeof(*ip) || tot < hlen)
				return drop(CNT_TRUNCATED);
			v.vrrp_off = (__u32)((void *)ip - data) + hlen;
			v.payload_len = tot - hlen;
			return handle_vrrp(ctx, &v);
		}
		l4 = parse_ipv4(&c, &ip);
		if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
			return XDP_PASS;
		if (ip->frag_off & bpf_htons(0x1fff)) /* non-first fragment: no ports */
			return XDP_PASS;
		f.fk.family = FAMILY_V4;
		__builtin_memcpy(f.fk.src, &ip->saddr, 4);
		__builtin_memcpy(f.fk.dst, &ip->daddr, 4);
	} else if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;

		l4 = parse_ipv6(&c, &ip6);
		if (l4 < 0)
			return XDP_PASS;
		if (l4 == IPPROTO_VRRP) {
			struct vrrp_ctx v = {};

			v.family = FAMILY_V6;
			v.ttl = ip6->hop_limit;
			__builtin_memcpy(v.src, &ip6->saddr, 16);
			__builtin_memcpy(v.dst, &ip6->daddr, 16);
			v.vrrp_off = (__u32)((void *)(ip6 + 1) - data);
			v.payload_len = bpf_ntohs(ip6->payload_len);
			return handle_vrrp(ctx, &v);
		}
		if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
			return XDP_PASS;
		f.fk.family = FAMILY_V6;
		__builtin_memcpy(f.fk.src, &ip6->saddr, 16);
		__builtin_memcpy(f.fk.dst, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}

	if (parse_ports(&c, l4, &f.fk.sport, &f.fk.dport) < 0)
		return XDP_PASS;
	f.fk.proto = l4;
	f.pkt_len = ctx->data_end - ctx->data;
	return handle_fwd(ctx, eth, &f);
}
