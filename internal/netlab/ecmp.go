package netlab

import "fmt"

// ECMPConf is an ECMP load balancer's configuration: router_id name, no
// vrrp_instance, a bgp block (local AS 65010, no router_id or interface:
// the defaults come from the route to the router) with one neighbor,
// router (remote AS 65000, hold time hold seconds), and virtual server
// vip:80 announced for ECMP (delay_loop 1, wrr, DR, TCP) over reals (its
// real_server blocks). neighborExtra and bgpExtra are more lines (each
// ending in a newline) for the neighbor and the bgp block.
func ECMPConf(name, router string, hold int, neighborExtra, bgpExtra, vip, reals string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
}
! xdpvip's BGP extension (keepalived warns "Unknown keyword" and skips it)
bgp {
    local_as 65010
    neighbor %s {
        remote_as 65000
        hold_time %d
%s    }
%s}
virtual_server %s 80 {
    announce ecmp
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
%s}
`, name, router, hold, neighborExtra, bgpExtra, vip, reals)
}
