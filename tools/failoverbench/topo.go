package main

import (
	"github.com/xdpvip/xdpvip/internal/netlab"
)

// Topology of one benchmark (prefix P is random, e.g. "fb3f9a1c"), a
// netlab bridge lab:
//
//	namespace P-sw:      bridge br0, ports p-client, p-lb1, p-lb2 (veth, switch side)
//	namespace P-client:  eth0 192.0.2.1/24   (probes the VIP, watches its neighbour entry)
//	namespace P-lb1:     eth0 192.0.2.11/24  (priority 100, MASTER at start)
//	namespace P-lb2:     eth0 192.0.2.12/24  (priority 90, BACKUP at start)
//
// Close deletes every namespace.
const hostIface = netlab.DefaultIface

// host is one namespace plugged into the bridge.
type host = netlab.Host

// topology is the switch namespace and the three hosts.
type topology struct {
	*netlab.Net
	client, lb1, lb2 *host
}

// newTopology builds the namespaces, bridge and veths. On error it deletes
// whatever it created.
func newTopology() (_ *topology, err error) {
	n, err := netlab.New("fb")
	if err != nil {
		return nil, err
	}
	t := &topology{Net: n}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	for _, h := range []struct {
		to   **host
		name string
		addr string
	}{{&t.client, "client", "192.0.2.1/24"}, {&t.lb1, "lb1", "192.0.2.11/24"}, {&t.lb2, "lb2", "192.0.2.12/24"}} {
		if *h.to, err = n.AddHost(h.name, h.addr, netlab.WithPort("p-"+h.name)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// setCable brings the switch side of h's cable up or down: the host sees
// carrier loss, as if its cable were pulled or the machine had died.
func (t *topology) setCable(h *host, up bool) error { return t.SetLink(h, up) }
