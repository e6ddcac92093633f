/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* parsing.h: header cursor. Each parse_* checks that the whole header lies
 * inside the frame before reading it, advances the cursor past it and
 * returns the next protocol (or -1 when the frame is too short). */
#ifndef XDPVIP_PARSING_H
#define XDPVIP_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "consts.h"

struct cursor {
	void *pos;
	void *end;
};

/* parse_eth returns the EtherType in network byte order. */
static __always_inline int parse_eth(struct cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*eth = h;
	return h->h_proto;
}

/* An 802.1Q / 802.1ad tag, after the MAC addresses or another tag. */
struct vlan_tag {
	__be16 tci;
	__be16 proto;           /* the EtherType it carries */
};

/* parse_vlans skips up to VLAN_MAX_DEPTH tags (C-tag or S-tag) after the
 * Ethernet header, counting them in *depth, and returns the EtherType they
 * carry (network order), or PARSE_SHORT. The first tag, if any, is right
 * after the MACs, where the EtherType was. */
static __always_inline int parse_vlans(struct cursor *c, int proto, __u8 *depth)
{
#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		struct vlan_tag *t = c->pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			return proto;
		if ((void *)(t + 1) > c->end)
			return -1;
		proto = t->proto;
		c->pos = t + 1;
		(*depth)++;
	}
	return proto;
}

/* parse_ipv4 returns the IP protocol; the cursor moves past the options.
 * It returns PARSE_SHORT when the fixed header is not in the frame, and
 * PARSE_BAD_IHL (with *ip set, so the caller can still read the fixed
 * header) when the header length is below 20 or runs past the frame. */
#define PARSE_SHORT (-1)
#define PARSE_BAD_IHL (-2)
#define IPV4_IHL_UNIT 4 /* ihl counts 32-bit words */
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;
	__u32 hlen;

	if ((void *)(h + 1) > c->end)
		return PARSE_SHORT;
	*ip = h;
	hlen = h->ihl * IPV4_IHL_UNIT;
	if (hlen < sizeof(*h))
		return PARSE_BAD_IHL;
	if (c->pos + hlen > c->end)
		return PARSE_BAD_IHL;
	c->pos += hlen;
	return h->protocol;
}

/* VRRP's fixed header, both versions (RFC 3768 §5.1, RFC 5798 §5.1);
 * count addresses (4 or 16 bytes each) follow, then, in v2 only,
 * VRRP_V2_AUTH_LEN bytes of authentication data. */
struct vrrp_hdr {
	__u8 vers_type;         /* version (high 4 bits), type (low 4) */
	__u8 vrid;
	__u8 priority;
	__u8 count;             /* number of addresses */
	union {
		struct {
			__u8 auth_type;
			__u8 adver_int; /* seconds */
		} v2;
		__be16 max_adver_int;   /* v3: 4 reserved bits, 12 bits of cs */
	};
	__be16 checksum;
};

/* The v3 checksum's pseudo-headers (RFC 5798 §5.2.8, RFC 2460 §8.1). */
struct pseudo4 {
	__be32 src;
	__be32 dst;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

struct pseudo6 {
	__u8 src[IPV6_ADDR_LEN];
	__u8 dst[IPV6_ADDR_LEN];
	__be32 len;
	__u8 zero[3];
	__u8 next_header;
};

/* parse_ipv6 returns the next header field of the fixed header
 * (skip_ipv6_ext walks the extension headers). */
static __always_inline int parse_ipv6(struct cursor *c, struct ipv6hdr **ip6)
{
	struct ipv6hdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*ip6 = h;
	return h->nexthdr;
}

/* An IPv6 extension header's first two octets (hop-by-hop, routing and
 * destination options; routing adds its type and segments left). */
struct ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;            /* in IPV6_EXT_UNIT octets, not counting the first 8 */
	__u8 routing_type;      /* routing header only */
	__u8 segments_left;     /* routing header only */
};

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;        /* offset (13 bits), 2 reserved bits, M */
	__be32 id;
};

/* PARSE_NOT_FOR_US: a routing header with segments left, so this node is
 * not the final destination: the kernel processes it. */
#define PARSE_NOT_FOR_US (-3)

/* skip_ipv6_ext walks at most IPV6_MAX_EXT hop-by-hop, routing,
 * destination-options and fragment headers from next header nh and
 * returns the upper-layer protocol, the cursor past the last one. *frag
 * is set for a fragment header with a non-zero offset or M (an atomic
 * fragment, RFC 8200 §4.5 / RFC 6946, is a whole datagram): FRAG_FIRST
 * (offset 0), FRAG_LATER (an offset). Returns
 * PARSE_SHORT when a header runs past the frame or there are more than
 * IPV6_MAX_EXT, PARSE_NOT_FOR_US for a routing header with segments
 * left. */
static __always_inline int skip_ipv6_ext(struct cursor *c, int nh, __u8 *frag)
{
#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT; i++) {
		if (nh == IPV6_EXT_FRAGMENT) {
			struct ipv6_frag *fh = c->pos;

			if ((void *)(fh + 1) > c->end)
				return PARSE_SHORT;
			if (fh->frag_off & bpf_htons(IPV6_FRAG_OFFSET_M))
				*frag = (fh->frag_off & bpf_htons(IPV6_FRAG_OFFSET)) ? FRAG_LATER : FRAG_FIRST;
			nh = fh->nexthdr;
			c->pos = fh + 1;
			continue;
		}
		if (nh != IPV6_EXT_HOPOPTS && nh != IPV6_EXT_ROUTING && nh != IPV6_EXT_DSTOPTS)
			return nh;
		struct ipv6_ext *h = c->pos;
		__u32 len;

		if ((void *)h + IPV6_EXT_UNIT > c->end)
			return PARSE_SHORT;
		if (nh == IPV6_EXT_ROUTING && h->segments_left)
			return PARSE_NOT_FOR_US;
		len = ((__u32)h->hdrlen + 1) * IPV6_EXT_UNIT;
		if (c->pos + len > c->end)
			return PARSE_SHORT;
		nh = h->nexthdr;
		c->pos += len;
	}
	if (nh == IPV6_EXT_HOPOPTS || nh == IPV6_EXT_ROUTING || nh == IPV6_EXT_DSTOPTS || nh == IPV6_EXT_FRAGMENT)
		return PARSE_SHORT; /* more than IPV6_MAX_EXT: the kernel's */
	return nh;
}

/* parse_ports reads the TCP or UDP source and destination ports (both
 * start the header); it checks the full fixed header of either. */
static __always_inline int parse_ports(struct cursor *c, int proto, __u16 *sport, __u16 *dport)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *t = c->pos;

		if ((void *)(t + 1) > c->end)
			return -1;
		*sport = t->source;
		*dport = t->dest;
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *u = c->pos;

		if ((void *)(u + 1) > c->end)
			return -1;
		*sport = u->source;
		*dport = u->dest;
		return 0;
	}
	return -1;
}

#endif
