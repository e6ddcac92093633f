/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* consts.h: protocol numbers, sizes and limits used by the XDP program. */
#ifndef XDPVIP_CONSTS_H
#define XDPVIP_CONSTS_H

#include <linux/if_ether.h> /* ETH_P_IP, ETH_P_IPV6, ETH_ALEN */
#include <linux/in.h>       /* IPPROTO_TCP, IPPROTO_UDP */

#define IPPROTO_VRRP 112

/* VRRP: RFC 3768 (v2) and RFC 5798 (v3). */
#define VRRP_TTL 255
#define VRRP_TYPE_ADVERT 1
#define VRRP_HDR_LEN 8          /* fixed part of both versions */
#define VRRP_V2_AUTH_LEN 8      /* v2 trailing authentication data */
#define VRRP_AUTH_NONE 0
#define VRRP_AUTH_PASS 1        /* simple text password, v2 only */

/* Scratch space for checksums and ring-buffer payloads. Bounds the largest
 * VRRP message (plus the v3 IPv6 pseudo-header) the program accepts. */
#define VRRP_MAX_MSG 1024
#define PSEUDO6_LEN 40
#define PSEUDO4_LEN 12

/* Address families as stored in keys and values (match Go's 4 / 6). */
#define FAMILY_V4 4
#define FAMILY_V6 6

/* Limits of the DR tables. */
#define MAX_VRIDS 512           /* (vrid, family) pairs */
#define MAX_PEERS 1024          /* unicast peer allow-list entries */
#define MAX_SERVICES 256
#define MAX_REALS 4096
#define MAX_FLOWS 262144
#define MAX_PERSIST 65536
#define MAX_VIPS 1024

/* Seed of the flow hash. Every node uses the same value so that two nodes
 * with the same Maglev table send a flow to the same real server. */
#define HASH_SEED 0x5eed1bad

/* service flags (struct svc_value.flags) */
#define SVC_F_HASH_SRC 0x1      /* sh: hash the client address only */
#define SVC_F_PERSIST 0x2       /* persistence_timeout: persistence table */

/* real server flags (struct real.flags) */
#define REAL_F_VALID 0x1        /* MAC resolved and in use */

#endif
