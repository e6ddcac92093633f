/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* maps.h: every map of the XDP program. All are pinned by name under
 * <bpf-dir>/<ifname>/ so a restarted daemon reuses them. */
#ifndef XDPVIP_MAPS_H
#define XDPVIP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "shared.h"

/* counters: per-CPU packet counters indexed by enum counter (drop reasons,
 * accepted adverts, forwarding verdicts). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32); /* enum counter; array keys must be plain ints */
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* iface: the interface's own MAC and ifindex (one entry, written by Go). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iface_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} iface SEC(".maps");

/* vrid_config: VRRP instances configured on this interface, by (vrid,
 * family). Adverts for any other VRID are dropped as "vrid". */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VRIDS);
	__type(key, struct vrid_key);
	__type(value, struct vrid_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrid_config SEC(".maps");

/* vrrp_peers: unicast-peer allow-list, used when vrid_config.any_peer is 0,
 * with the TTL range of each peer's adverts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PEERS);
	__type(key, struct peer_key);
	__type(value, struct peer_ttl);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrrp_peers SEC(".maps");

/* vrrp_peer_state: the last valid advert per (vrid, family): source,
 * priority, interval, time and count. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VRIDS);
	__type(key, struct vrid_key);
	__type(value, struct vrrp_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrrp_peer_state SEC(".maps");

/* vrrp_events: one struct vrrp_event per valid advert, read by Go. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VRRP_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrrp_events SEC(".maps");

/* scratch: per-CPU copy of the VRRP message being checksummed. */
struct scratch_buf {
	__u8 buf[VRRP_MAX_MSG];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_buf);
} scratch SEC(".maps");

/* vip_state: VIPs this node is MASTER for (value 1), for Go and bpftool.
 * The program reads SVC_F_ACTIVE, which Go keeps equal to it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_state SEC(".maps");

/* vip_filter: one struct vip_bitmap, the set of addresses with a service
 * (written whole by Go whenever the services change). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vip_bitmap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_filter SEC(".maps");

/* services: virtual servers (VIP, port, proto) → id, table size, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services SEC(".maps");

/* services_by_id: by service id, the service's key and value (Go writes
 * it with every services entry): the flow-hit path reads it instead of
 * looking services up. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services_by_id SEC(".maps");

/* frag_services: for each (VIP, proto) with exactly one service, a copy
 * of its services value: fragments carry no ports (or, the first, ports
 * that later fragments lack), so all fragments of a VIP go by this entry
 * and a 3-tuple hash, to one real server. (VIP, proto) pairs with several
 * services have no entry: their fragments go to the kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct frag_key);
	__type(value, struct svc_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frag_services SEC(".maps");

/* maglev_tables: per service id, an inner array of ring_size real ids (the
 * Maglev lookup table). Go swaps a service's table by writing a new inner
 * map into its slot, which is atomic for the program. */
struct maglev_ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAGLEV_MAX_SIZE); /* Go sets the configured size */
	__type(key, __u32);
	__type(value, __u32);
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct maglev_ring);
} maglev_tables SEC(".maps");

/* reals: real servers by id: MAC, interface, owning service. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} reals SEC(".maps");

/* real_stats: per-CPU packets, bytes and new flows per real server id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} real_stats SEC(".maps");

/* flows: established flows pinned to their real server (LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* persist: persistence_timeout choices per (service, client) (LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_PERSIST);
	__type(key, struct persist_key);
	__type(value, struct persist_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} persist SEC(".maps");

#endif
