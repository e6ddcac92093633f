package dataplane

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VLANs: the program is attached to a parent interface and sees its
// VLANs' frames tagged (up to two tags, QinQ). A real server whose
// neighbour entry is on a VLAN device of that parent is reached through
// the parent with that VLAN's tag: the program rewrites, pushes or pops the
// tag of a single-tagged or untagged frame (struct real.vlan) and sends it
// out of the parent with XDP_TX. Double-tagged frames keep their tags.

// realVLANUntagged is REAL_VLAN_UNTAGGED (bpf/consts.h): send untagged.
const realVLANUntagged = 0x1000

// vlanLinks says which interfaces are VLAN devices.
type vlanLinks interface {
	// VLANOf returns the parent ifindex and VID of a VLAN device, ok
	// false for any other interface.
	VLANOf(ifindex int) (parent int, vid uint16, ok bool)
}

// netlinkVLANs answers from the kernel through a netlink handle opened in
// the dataplane's network namespace.
type netlinkVLANs struct{ h *netlink.Handle }

func newNetlinkVLANs() (*netlinkVLANs, error) {
	// NETLINK_ROUTE only: a handle of every family fails on kernels
	// without, say, xfrm_user loaded.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("dataplane: netlink handle for VLAN lookups: %w", err)
	}
	return &netlinkVLANs{h: h}, nil
}

func (n *netlinkVLANs) VLANOf(ifindex int) (int, uint16, bool) {
	l, err := n.h.LinkByIndex(ifindex)
	if err != nil {
		return 0, 0, false
	}
	v, ok := l.(*netlink.Vlan)
	if !ok {
		return 0, 0, false
	}
	return v.ParentIndex, uint16(v.VlanId), true
}

func (n *netlinkVLANs) close() { n.h.Close() }

// egress is how the program reaches a real server whose neighbour entry
// is on ifindex: the interface to send on (0 or the attached one: XDP_TX)
// and struct real.vlan. Without VLAN information (prog.Run tests), frames
// keep their tagging.
func (s *lvsState) egress(ifindex int) (uint32, uint16) {
	if s.links == nil {
		return uint32(ifindex), 0
	}
	if ifindex == s.d.ifindex {
		return uint32(ifindex), realVLANUntagged
	}
	if parent, vid, ok := s.links.VLANOf(ifindex); ok && parent == s.d.ifindex && vid > 0 && vid < 4095 {
		return uint32(parent), vid
	}
	return uint32(ifindex), 0
}
