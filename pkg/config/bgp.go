package config

import (
	"net/netip"
	"time"
)

// BGP is xdpvip's `bgp { }` extension block: the embedded BGP speaker that
// announces virtual servers' addresses to the routers. keepalived 2.2.7
// warns "Unknown keyword" for each of its lines and parses the rest of the
// file, so one file serves both.
//
//	bgp {
//	    router_id 10.78.1.101   # optional, IPv4
//	    interface eth0          # optional
//	    local_as 65010
//	    neighbor 10.78.1.1 {
//	        remote_as 65000
//	        hold_time 3         # seconds, 0 or 3..65535; default 90
//	        bfd                 # optional
//	        password SECRET     # optional, TCP MD5
//	        graceful_restart 30 # optional, restart time (default 120)
//	    }
//	    flow_sync_peer 10.78.1.102   # optional, repeatable
//	}
type BGP struct {
	Pos
	// RouterID is zero when not given: the daemon uses the source address
	// towards the first neighbor.
	RouterID netip.Addr
	// Interface is empty when not given: the daemon uses the interface of
	// the route to the first neighbor. XDP is attached there for
	// `announce ecmp` virtual servers.
	Interface string
	LocalAS   uint32
	Neighbors []*BGPNeighbor
	// FlowSyncPeers are the other nodes behind the same routers
	// (`flow_sync_peer ADDR`, repeatable): established flows are exchanged
	// with them so a flow moved between nodes keeps its real server.
	FlowSyncPeers []netip.Addr
}

// BGPNeighbor is one `neighbor ADDR { }` block of the bgp block.
type BGPNeighbor struct {
	Pos
	Addr     netip.Addr
	RemoteAS uint32
	// HoldTime is DefaultBGPHoldTime unless given; 0 means no keepalives.
	HoldTime time.Duration
	BFD      bool
	// Password is the TCP MD5 signature key (RFC 2385), empty for none.
	Password string
	// GracefulRestart is the restart time advertised for BGP graceful
	// restart (RFC 4724), 0 when off: a daemon that dies without closing
	// its sessions keeps its routes at the router that long (its XDP
	// program keeps forwarding), and a restarted one refreshes them.
	GracefulRestart time.Duration
}

// DefaultGracefulRestart is the restart time of `graceful_restart` without
// a value.
const DefaultGracefulRestart = 120 * time.Second

// DefaultBGPHoldTime is BGP's customary hold time.
const DefaultBGPHoldTime = 90 * time.Second

// Announce modes of a virtual server (`announce ecmp`, `announce vrrp NAME`).
const (
	// AnnounceECMP: every node forwards the virtual server and announces
	// its address while it can serve it.
	AnnounceECMP = "ecmp"
	// AnnounceVRRP: the address is announced only while the named
	// vrrp_instance is MASTER.
	AnnounceVRRP = "vrrp"
)

// Announce is a virtual server's `announce` keyword; the zero value means
// the virtual server is not announced.
type Announce struct {
	Pos
	// Mode is AnnounceECMP or AnnounceVRRP.
	Mode string
	// Instance is the vrrp_instance of AnnounceVRRP.
	Instance string
}

// maxASN is the largest 4-octet AS number (RFC 6793).
const maxASN = 1<<32 - 1

// bgp reads the bgp block.
func (b *builder) bgp(blk *node) {
	if b.cfg.BGP != nil {
		b.d.errorf(blk.pos, blk.key, "a second bgp block (the first is at %s)", b.cfg.BGP.Pos)
		return
	}
	if len(blk.args) > 0 {
		b.d.errorf(blk.pos, blk.key, "takes no arguments, got %q", blk.args[0].text)
	}
	g := &BGP{Pos: blk.pos}
	b.cfg.BGP = g
	seen := map[netip.Addr]Pos{}
	for _, n := range blk.children {
		switch n.key {
		case "router_id":
			if a, ok := b.addrArg(n); ok {
				if !a.Is4() {
					b.d.errorf(n.pos, n.key, "%s: a BGP identifier is an IPv4 address", a)
				} else {
					g.RouterID = a
				}
			}
		case "interface":
			g.Interface, _ = b.arg(n)
		case "local_as":
			if v, ok := b.intArg(n, 1, maxASN); ok {
				g.LocalAS = uint32(v)
			}
		case "flow_sync_peer":
			if a, ok := b.addrArg(n); ok {
				g.FlowSyncPeers = append(g.FlowSyncPeers, a)
			}
		case "neighbor":
			if !b.needBlock(n) {
				continue
			}
			nb, ok := b.bgpNeighbor(n)
			if !ok {
				continue
			}
			if p, dup := seen[nb.Addr]; dup {
				b.d.errorf(n.pos, n.key, "%s is already a neighbor at %s", nb.Addr, p)
				continue
			}
			seen[nb.Addr] = n.pos
			g.Neighbors = append(g.Neighbors, nb)
		default:
			b.unknown(n, "bgp")
		}
	}
	if g.LocalAS == 0 && !hasChild(blk, "local_as") {
		b.d.errorf(blk.pos, blk.key, "needs local_as")
	}
	if len(g.Neighbors) == 0 && !hasChild(blk, "neighbor") {
		b.d.errorf(blk.pos, blk.key, "needs at least one neighbor ADDR { remote_as N }")
	}
}

func hasChild(blk *node, key string) bool {
	for _, n := range blk.children {
		if n.key == key {
			return true
		}
	}
	return false
}

// bgpNeighbor reads a `neighbor ADDR { }` block.
func (b *builder) bgpNeighbor(blk *node) (*BGPNeighbor, bool) {
	a, ok := b.addrArg(blk)
	if !ok {
		return nil, false
	}
	nb := &BGPNeighbor{Pos: blk.pos, Addr: a, HoldTime: DefaultBGPHoldTime}
	valid := true
	for _, n := range blk.children {
		switch n.key {
		case "remote_as":
			if v, ok := b.intArg(n, 1, maxASN); ok {
				nb.RemoteAS = uint32(v)
			} else {
				valid = false
			}
		case "hold_time":
			v, ok := b.intArg(n, 0, 65535)
			switch {
			case !ok:
				valid = false
			case v == 1 || v == 2:
				// RFC 4271 §4.2: zero or at least three seconds.
				b.d.errorf(n.pos, n.key, "%d: a hold time is 0 or at least 3 seconds", v)
				valid = false
			default:
				nb.HoldTime = time.Duration(v) * time.Second
			}
		case "bfd":
			nb.BFD, ok = b.boolArg(n)
			valid = valid && ok
		case "graceful_restart":
			nb.GracefulRestart = DefaultGracefulRestart
			if len(n.args) > 0 {
				// The capability's restart time has 12 bits.
				if v, ok := b.intArg(n, 1, 4095); ok {
					nb.GracefulRestart = time.Duration(v) * time.Second
				} else {
					valid = false
				}
			}
		case "password":
			s, ok := b.arg(n)
			switch {
			case !ok:
				valid = false
			case len(s) > 80:
				// TCP_MD5SIG_MAXKEYLEN.
				b.d.errorf(n.pos, n.key, "longer than 80 bytes")
				valid = false
			default:
				nb.Password = s
			}
		default:
			b.unknown(n, "neighbor")
		}
	}
	if nb.RemoteAS == 0 && !hasChild(blk, "remote_as") {
		b.d.errorf(blk.pos, blk.key, "%s needs remote_as", a)
		valid = false
	}
	return nb, valid
}

// announce reads a virtual server's `announce ecmp` / `announce vrrp NAME`.
func (b *builder) announce(n *node, vs *VirtualServer) {
	mode, ok := b.arg(n)
	if !ok {
		return
	}
	if vs.Addr == (netip.Addr{}) {
		b.d.errorf(n.pos, n.key, "only a virtual server given by IP and port can be announced")
		return
	}
	switch mode {
	case AnnounceECMP:
		if len(n.args) > 1 {
			b.d.errorf(n.pos, n.key, "ecmp takes no instance, got %q", n.args[1].text)
			return
		}
		vs.Announce = Announce{Pos: n.pos, Mode: mode}
	case AnnounceVRRP:
		if len(n.args) != 2 {
			b.d.errorf(n.pos, n.key, "vrrp needs exactly one vrrp_instance name")
			return
		}
		vs.Announce = Announce{Pos: n.pos, Mode: mode, Instance: n.args[1].text}
	default:
		b.d.errorf(n.pos, n.key, "%q is not ecmp or vrrp", mode)
	}
}

// finishBGP checks what needs the whole file: announcing needs a bgp block,
// and `announce vrrp NAME` a vrrp_instance NAME.
func (b *builder) finishBGP() {
	for _, vs := range b.cfg.VirtualServers {
		a := vs.Announce
		if a.Mode == "" {
			continue
		}
		if b.cfg.BGP == nil {
			b.d.errorf(a.Pos, "announce", "needs a bgp { } block to announce %s", vs.Key())
			continue
		}
		if a.Mode == AnnounceVRRP && b.cfg.Instance(a.Instance) == nil {
			b.d.errorf(a.Pos, "announce", "no vrrp_instance %q", a.Instance)
		}
	}
}
