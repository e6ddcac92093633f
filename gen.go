// Package xdpvip is the module root; gen.go holds the code generation steps.
// Run `make generate` (needs clang) to rebuild the BPF objects in
// pkg/dataplane from the C sources in bpf/.
package xdpvip

//go:generate go tool bpf2go -go-package dataplane -output-dir pkg/dataplane -target bpfel -type counter -type svc_flag -type real_flag -type tun_type -type vrrp_event -type vrrp_hdr -type vrid_cfg -type vrid_key -type peer_key -type peer_ttl -type vrrp_peer -type svc_key -type svc_value -type real -type real_counters -type vip_key -type iface_config -type vip_bitmap -type frag_key -type svc_slot -type flow_key -type flow_value -type persist_key -type persist_value xdpvip bpf/xdp_vip.c -- -I bpf -I /usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
