/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* shared.h: structs and enums shared with Go. bpf2go emits a named Go type
 * for each of them, so keep every field explicitly sized and padded. */
#ifndef XDPVIP_SHARED_H
#define XDPVIP_SHARED_H

#include <linux/types.h>
#include "consts.h"

/* Counter indexes of the per-CPU "counters" map. The drop reasons come
 * first; CNT_VRRP_VALID is also what check_vrrp returns for a valid
 * advert. Go names each index in pkg/dataplane (counterNames, tested
 * against these values). Append only: the pinned map's size is CNT_MAX. */
enum counter {
	CNT_TRUNCATED = 0,
	CNT_TTL,
	CNT_VERSION,
	CNT_TYPE,
	CNT_VRID,
	CNT_LENGTH,
	CNT_ADDR_COUNT,
	CNT_CHECKSUM,
	CNT_AUTH_TYPE,
	CNT_AUTH,
	CNT_INTERVAL,
	CNT_UNICAST_PEER,
	CNT_FAMILY,
	CNT_VRRP_VALID,     /* adverts accepted */
	CNT_RINGBUF_FULL,   /* accepted adverts whose event could not be sent */
	CNT_FWD_TX,         /* VIP frames sent back out with XDP_TX */
	CNT_FWD_REDIRECT,   /* VIP frames redirected to another interface */
	CNT_FWD_NO_REAL,    /* VIP frames passed: no usable real server */
	CNT_TUN_ICMP4_TOO_BIG, /* TUN: IPv4 with DF too big for the tunnel: ICMP
				* fragmentation needed sent back (XDP_TX) */
	CNT_TUN_ICMP6_TOO_BIG, /* TUN: IPv6 too big: ICMPv6 Packet Too Big sent back */
	CNT_TUN_TOO_BIG_DROP,  /* TUN: too big and no ICMP to send (IPv4 without
				* DF, a later IPv6 fragment): dropped */
	CNT_MAX,
};

/* struct svc_value.flags (enums so that bpf2go emits them for Go). */
enum svc_flag {
	SVC_F_HASH_SRC = 0x1,   /* sh: hash the client address only */
	SVC_F_PERSIST = 0x2,    /* persistence_timeout: persistence table */
	SVC_F_ACTIVE = 0x4,     /* the VIP is active here: Go mirrors vip_state
				 * into every service of the VIP, so the hot path
				 * needs no vip_state lookup */
};

/* struct real.flags */
enum real_flag {
	REAL_F_VALID = 0x1,     /* MAC resolved and in use */
	REAL_F_TUN_CSUM = 0x2,  /* TUN GUE: the UDP checksum (else 0); GRE: the
				 * GRE checksum (else none) */
};

/* struct real.tun_type: how frames reach the real server. */
enum tun_type {
	TUN_NONE = 0,           /* DR: the frame as it came, MACs rewritten */
	TUN_IPIP = 1,           /* IP-in-IP: outer IPv4 / IPv6, protocol 4 or 41 */
	TUN_GUE = 2,            /* outer IP, UDP to tun_port, GUE header v0 */
	TUN_GRE = 3,            /* outer IP, protocol 47, GRE header (RFC 2784) */
};

/* Key of vrid_config and vrrp_peer_state. */
struct vrid_key {
	__u8 vrid;
	__u8 family;    /* 4 or 6 */
	__u8 pad[2];
};

/* What Go configured for one VRRP instance on this interface. */
struct vrid_cfg {
	__u8 version;       /* 2 or 3 */
	__u8 auth_type;     /* v2: 0 none, 1 password */
	__u8 any_peer;      /* 1: accept any source; 0: only vrrp_peers */
	__u8 addr_count;    /* expected address count; 0 = any */
	__u16 interval_cs;  /* v2: expected advert interval, centiseconds; 0 = any */
	__u8 pad[2];
	__u8 auth[VRRP_V2_AUTH_LEN]; /* v2 password, zero padded */
};

/* Key of the unicast-peer allow-list. */
struct peer_key {
	__u8 vrid;
	__u8 family;
	__u8 pad[2];
	__u8 addr[16];      /* IPv4 in the first 4 bytes */
};

/* Value of the unicast-peer allow-list: the TTL / hop limit range the
 * peer's adverts must arrive with (unicast_peer's min_ttl / max_ttl;
 * 0 / 255 when not configured). */
struct peer_ttl {
	__u8 min_ttl;
	__u8 max_ttl;
};

/* Last valid advert seen for a (vrid, family). */
struct vrrp_peer {
	__u8 src[ADDR_LEN];
	__u8 priority;
	__u8 version;
	__u16 interval_cs;
	__u32 pad;
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC_COARSE */
	__u64 count;
};

/* Ring-buffer event for one valid advert. payload holds the VRRP message
 * (payload_len bytes) so Go can decode the address list. */
struct vrrp_event {
	__u64 ktime_ns;
	__u8 vrid;
	__u8 family;
	__u8 version;
	__u8 priority;
	__u16 interval_cs;
	__u16 payload_len;
	__u8 src[ADDR_LEN];
	__u8 dst[ADDR_LEN];
	__u8 payload[VRRP_MAX_MSG];
};

/* Interface the program is attached to (single entry, written by Go). */
struct iface_config {
	__u8 mac[6];
	__u8 pad[2];
	__u32 ifindex;
};

/* Key of vip_state: a VIP this node may own. */
struct vip_key {
	__u8 addr[16];
	__u8 family;
	__u8 pad[3];
};

/* The one entry of vip_filter: the bit may_be_vip() computes is set for every
 * address that has a service, so frames to other addresses leave after
 * one (inlined) array lookup. A set bit only means "look in services". */
struct vip_bitmap {
	__u64 bits[VIP_FILTER_WORDS];
};

/* Key of services: a virtual server. port is in network byte order. */
struct svc_key {
	__u8 addr[16];
	__u16 port;
	__u8 proto;
	__u8 family;
};

/* Key of frag_services: the one service of (VIP, proto), which every
 * fragment to the VIP (no ports to look up) is sent by. */
struct frag_key {
	__u8 addr[16];
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct svc_value {
	__u32 id;               /* index into maglev_tables and stats */
	__u32 ring_size;        /* M: the Maglev table's prime size */
	__u32 persist_timeout_s;
	__u8 flags;             /* SVC_F_* */
	__u8 pad[3];
};

/* A value of services_by_id: a service's key and its services value, so
 * an established flow (whose value names the service id) finds its
 * service without a hash lookup. An unused id has key and value zero. */
struct svc_slot {
	struct svc_key key;
	struct svc_value value;
};

/* A real server: where to send frames and how. */
struct real {
	__u8 mac[6];
	__u8 flags;             /* REAL_F_* */
	__u8 family;
	__u32 ifindex;          /* interface to send on; 0 = this one */
	__u32 svc_id;           /* the service this real server belongs to */
	__u8 addr[16];          /* its address (for Go and bpftool) */
	__u16 port;             /* its port, host order (for Go and bpftool) */
	__u16 vlan;             /* 802.1Q VID it is reached on through this
				 * interface (host order); 0: as the frame
				 * came; REAL_VLAN_UNTAGGED: untagged */
	/* LVS-TUN (tun_type != TUN_NONE): mac is the next hop's (the real
	 * server or its gateway), family the outer packet's. */
	__u8 tun_type;          /* enum tun_type */
	__u8 pad;
	__be16 tun_port;        /* GUE destination port, network order */
	__u8 tun_src[16];       /* outer source address (IPv4 in the first 4) */
	__u16 mtu;              /* path MTU towards it, host order; 0: unknown */
	__u8 pad2[2];
};

/* Per-real-server counters (per CPU). */
struct real_counters {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/* Key of the flow table: a connection's 5-tuple. Ports network order. */
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct flow_value {
	__u32 real_id;
	__u32 svc_id;
};

/* Key of the persistence table: (service, client address). */
struct persist_key {
	__u32 svc_id;
	__u8 client[16];
};

struct persist_value {
	__u32 real_id;
	__u32 pad;
	__u64 last_seen_ns;
};

#endif
