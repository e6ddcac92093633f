/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* consts.h: protocol numbers, sizes and limits used by the XDP program. */
#ifndef XDPVIP_CONSTS_H
#define XDPVIP_CONSTS_H

#include <linux/if_ether.h> /* ETH_P_IP, ETH_P_IPV6, ETH_ALEN */
#include <linux/in.h>       /* IPPROTO_TCP, IPPROTO_UDP */

#define IPPROTO_VRRP 112

/* VRRP: RFC 3768 (v2) and RFC 5798 (v3). The fixed header is struct
 * vrrp_hdr (parsing.h). */
#define VRRP_TTL 255
#define VRRP_VERSION_2 2
#define VRRP_VERSION_3 3
#define VRRP_TYPE_ADVERT 1
#define VRRP_VERSION_SHIFT 4    /* version: high 4 bits of the first byte */
#define VRRP_TYPE_MASK 0x0f     /* type: low 4 bits */
#define VRRP_V2_AUTH_LEN 8      /* v2 trailing authentication data */
#define VRRP_AUTH_NONE 0
#define VRRP_AUTH_PASS 1        /* simple text password, v2 only */
#define VRRP_V3_INTERVAL_MASK 0x0fff /* 12 bits of centiseconds */
#define CS_PER_SECOND 100       /* v2 intervals are seconds, stored as cs */

/* Address lengths on the wire; maps store every address in ADDR_LEN
 * bytes, IPv4 in the first IPV4_ADDR_LEN. */
#define IPV4_ADDR_LEN 4
#define IPV6_ADDR_LEN 16
#define ADDR_LEN 16

/* Before Linux 6.13, bpf_csum_diff sums at most 512 bytes per call (and
 * fails with -EINVAL above): messages are loaded and summed one chunk of
 * this size at a time. */
#define CSUM_CHUNK 512
#define CSUM_CHUNKS 3

/* The largest VRRP message (header, addresses, v2 authentication data)
 * the program accepts, in whole chunks: more than a 1500-byte frame
 * carries, so 255 IPv4 addresses (v2: 1036 bytes) and 95 IPv6 addresses
 * (1528). It sizes the ring-buffer record's payload and the scratch
 * buffer. */
#define VRRP_MAX_MSG (CSUM_CHUNKS * CSUM_CHUNK)

/* Address families as stored in keys and values (match Go's 4 / 6). */
#define FAMILY_V4 4
#define FAMILY_V6 6

/* VRRP virtual MAC 00:00:5e:00:01:VRID (IPv4), 00:00:5e:00:02:VRID (IPv6):
 * the VMAC_PREFIX_LEN bytes of VMAC_PREFIX, then the family byte. */
#define VMAC_PREFIX 0x00005e00
#define VMAC_PREFIX_LEN 4
#define VMAC_FAMILY_V4 0x01
#define VMAC_FAMILY_V6 0x02

/* 802.1Q: C-tags (ETH_P_8021Q) and S-tags (ETH_P_8021AD, QinQ), at most
 * VLAN_MAX_DEPTH of them; a tag's TCI holds PCP and DEI above the 12-bit
 * VID. */
#define VLAN_MAX_DEPTH 2
#define VLAN_VID_MASK 0x0fff
#define VLAN_HLEN 4
#define REAL_VLAN_UNTAGGED 0x1000 /* struct real.vlan: send untagged */

/* IPv4 fragments: the more-fragments flag and the offset bits of
 * frag_off (host order). */
#define IPV4_MF 0x2000
#define IPV4_FRAG_OFFSET_MASK 0x1fff

/* IPv6 extension headers the program walks (RFC 8200 §4), at most
 * IPV6_MAX_EXT of them; the fragment header's offset and M flag (host
 * order: offset in the top 13 bits, M the lowest). */
#define IPV6_EXT_HOPOPTS 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_DSTOPTS 60
#define IPV6_EXT_UNIT 8         /* Hdr Ext Len counts 8 octets, not the first 8 */
#define IPV6_MAX_EXT 4
#define IPV6_FRAG_OFFSET_M 0xfff9 /* offset bits and M: non-zero = a real fragment */
#define IPV6_FRAG_OFFSET 0xfff8   /* the offset bits alone */
/* What kind of fragment a frame is (struct flow_ctx.frag): a whole
 * datagram, the first fragment (the one with the L4 header), or a later
 * one. */
#define FRAG_NONE 0
#define FRAG_FIRST 1
#define FRAG_LATER 2

/* LVS-TUN encapsulation. GUE (draft-ietf-intarea-gue): a 4-byte header
 * after UDP, version 0, no options, proto_ctype the inner protocol (4 or
 * 41); GRE (RFC 2784): 4 bytes, 8 with the checksum. The UDP source port is a flow hash in Linux's default local port
 * range, as udp_flow_src_port() picks it for IPVS. */
#define IPPROTO_ICMP_V4 1
#define IPPROTO_ICMP_V6 58
#define GUE_HLEN 4
#define GRE_HLEN 4              /* flags and version, protocol */
#define GRE_HLEN_CSUM 8         /* and the checksum and a reserved word */
#define GRE_F_CSUM 0x8000       /* the C flag */
#define TUN_SPORT_MIN 32768
#define TUN_SPORT_MAX 60999
#define ECN_MASK 0x03
#define ECN_CE 0x03
#define ECN_ECT0 0x02
#define IPV4_DF 0x4000
#define IPV6_MIN_MTU 1280
#define IPV4_MIN_MTU 68
/* ICMP "too big" answers: type/code, TTL, and how much of the packet is
 * quoted: as Linux does, up to 576 bytes of ICMP packet for IPv4, up to
 * the IPv6 minimum MTU for ICMPv6 (RFC 4443 2.4 c). */
#define ICMP4_DEST_UNREACH 3
#define ICMP4_FRAG_NEEDED 4
#define ICMP6_PKT_TOO_BIG 2
#define ICMP_HLEN 8
#define ICMP_TTL 64
#define ICMP4_TOS 0xc0          /* IPTOS_PREC_INTERNETCONTROL, as Linux */
#define ICMP4_QUOTE_MAX (576 - 20 - ICMP_HLEN)
#define ICMP6_QUOTE_MAX (IPV6_MIN_MTU - 40 - ICMP_HLEN)
/* frame_sum sums up to FRAME_SUM_CHUNKS chunks of CSUM_CHUNK bytes: GUE
 * and GRE csum cover inner packets up to this size (more than a frame of
 * one page, the most XDP without multi-buffer support sees); larger ones
 * are passed as not forwardable. */
#define FRAME_SUM_CHUNKS 8
#define FRAME_SUM_MAX (FRAME_SUM_CHUNKS * CSUM_CHUNK)

#define NSEC_PER_SEC 1000000000ULL

/* Limits of the DR tables. */
#define MAX_VRIDS 512           /* (vrid, family) pairs */
#define MAX_PEERS 1024          /* unicast peer allow-list entries */
#define MAX_SERVICES 256
#define MAX_REALS 4096
#define MAX_FLOWS 262144
#define MAX_PERSIST 65536
#define MAX_VIPS 1024
/* vip_filter: a VIP_FILTER_BITS-bit set of service addresses, indexed by
 * the top VIP_FILTER_SHIFT bits of (folded address * VIP_FILTER_MULT). */
#define VIP_FILTER_SHIFT 12
#define VIP_FILTER_BITS (1 << VIP_FILTER_SHIFT)
#define VIP_FILTER_WORDS (VIP_FILTER_BITS / 64)
#define VIP_FILTER_MULT 0x9e3779b1u /* 2^32 / golden ratio */
#define MAGLEV_MAX_SIZE 65537   /* the largest Maglev table size M (a prime) */
#define VRRP_EVENTS_BYTES (1 << 20) /* ring buffer: ~650 struct vrrp_event records */

/* Seed of the flow hash. Every node uses the same value so that two nodes
 * with the same Maglev table send a flow to the same real server. */
#define HASH_SEED 0x5eed1bad

#endif
