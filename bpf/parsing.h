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

/* parse_ipv4 returns the IP protocol; the cursor moves past the options. */
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;
	__u32 hlen;

	if ((void *)(h + 1) > c->end)
		return -1;
	hlen = h->ihl * 4;
	if (hlen < sizeof(*h))
		return -1;
	if (c->pos + hlen > c->end)
		return -1;
	c->pos += hlen;
	*ip = h;
	return h->protocol;
}

/* parse_ipv6 returns the next header (extension headers are not walked). */
static __always_inline int parse_ipv6(struct cursor *c, struct ipv6hdr **ip6)
{
	struct ipv6hdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*ip6 = h;
	return h->nexthdr;
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
