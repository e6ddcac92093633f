package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// MapUsage is how full one hash map is.
type MapUsage struct {
	Entries, MaxEntries uint64
}

// maxUsageWalk bounds one map walk: a flow table larger than this is
// reported as at least this full rather than walked for seconds.
const maxUsageWalk = 1 << 20

// MapUsage returns the occupancy of the program's hash maps (flows,
// persistence, services, VIPs, VRIDs, unicast peers), by map name, for the
// xdpvip_bpf_map_usage_ratio metric. Arrays are always full and are left
// out.
func (d *Dataplane) MapUsage() (map[string]MapUsage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	out := map[string]MapUsage{}
	for name, m := range map[string]*ebpf.Map{
		"flows": d.objs.Flows, "persist": d.objs.Persist, "services": d.objs.Services,
		"vip_state": d.objs.VipState, "vrid_config": d.objs.VridConfig, "vrrp_peers": d.objs.VrrpPeers,
		"vrrp_peer_state": d.objs.VrrpPeerState,
	} {
		n, err := countKeys(m)
		if err != nil {
			return nil, fmt.Errorf("dataplane: %s usage: %w", name, err)
		}
		out[name] = MapUsage{Entries: n, MaxEntries: uint64(m.MaxEntries())}
	}
	return out, nil
}

// countKeys walks m's keys (without reading values).
func countKeys(m *ebpf.Map) (uint64, error) {
	key := make([]byte, m.KeySize())
	next := make([]byte, m.KeySize())
	var n uint64
	var prev any // nil: start from the first key
	for n < maxUsageWalk {
		err := m.NextKey(prev, &next)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		copy(key, next)
		prev = key
	}
	return n, nil
}
