// Package xdpplane is the XDP dataplane of one interface as the VRRP
// runtime and the virtual-server manager use it: it routes the adverts the
// program accepted to the instance of their VRID, is the instances' Role
// (forward a VIP or not) and PeerSeen (the program's last-seen record), and
// an lvs.Backend. When the interface is deleted and re-created, Reopen
// loads the program on the new one and everything above keeps its handle.
package xdpplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// Plane is the XDP program on one interface.
type Plane struct {
	opts   dataplane.Options
	log    *slog.Logger
	cancel context.CancelFunc

	mu     sync.Mutex
	dp     *dataplane.Dataplane
	byVRID map[[2]uint8]*instance.Instance // (vrid, family)
}

// Open loads (or reuses) the program on opts.Iface and starts handing its
// adverts to the registered instances.
func Open(opts dataplane.Options) (*Plane, error) {
	dp, err := dataplane.Open(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{opts: opts, log: opts.Logger, cancel: cancel, dp: dp, byVRID: map[[2]uint8]*instance.Instance{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	go p.readAdverts(ctx)
	return p, nil
}

// current is the interface's dataplane as last opened.
func (p *Plane) current() *dataplane.Dataplane {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dp
}

// Reopen loads the program again on a re-created interface (its pinned
// maps, VRID configuration included, are reused) and gives it services.
func (p *Plane) Reopen(services []lvs.Service) error {
	dp, err := dataplane.Open(p.opts)
	if err != nil {
		return fmt.Errorf("re-opening XDP on %s: %w", p.opts.Iface, err)
	}
	p.mu.Lock()
	old := p.dp
	p.dp = dp
	p.mu.Unlock()
	_ = old.Close()
	return dp.Apply(services)
}

// readAdverts hands each advert the program accepted to its instance.
func (p *Plane) readAdverts(ctx context.Context) {
	for {
		dp := p.current()
		ev, err := dp.ReadAdvert(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, dataplane.ErrClosed) {
				if p.current() == dp {
					return
				}
				continue // re-opened
			}
			p.log.Warn("reading XDP advert events failed", "err", err)
			continue
		}
		p.mu.Lock()
		in := p.byVRID[[2]uint8{ev.VRID, ev.Family}]
		p.mu.Unlock()
		if in != nil {
			// The arrival time is the program's stamp, carried onto Go's
			// clock by its age now.
			age, _ := sinceMonotonic(ev.Monotonic)
			in.Deliver(instance.Advert{Payload: ev.Payload, Src: ev.Src, Dst: ev.Dst, At: time.Now().Add(-max(age, 0))})
		}
	}
}

// Configure makes the program accept the adverts of instance ic.
func (p *Plane) Configure(ic *config.VRRPInstance) error {
	rc := instance.RecvConfig(ic)
	cfg := dataplane.VRIDConfig{
		Version: rc.Version, Family: uint8(ic.Family()), AuthType: rc.AuthType,
		AuthPass: ic.AuthPass, Peers: ic.UnicastPeers, AddrCount: uint8(len(rc.VIPs)),
	}
	if rc.Version == vrrp.Version2 {
		cfg.Interval = ic.AdvertInt
	}
	for i, r := range ic.UnicastPeerTTL {
		if i < len(ic.UnicastPeers) && (r.Min != 0 || r.Max != 255) {
			if cfg.PeerTTL == nil {
				cfg.PeerTTL = map[netip.Addr]dataplane.TTLRange{}
			}
			cfg.PeerTTL[ic.UnicastPeers[i].Unmap()] = dataplane.TTLRange{Min: r.Min, Max: r.Max}
		}
	}
	return p.current().ConfigureVRID(uint8(ic.VRID), cfg)
}

// Register hands the adverts of ic's VRID to in.
func (p *Plane) Register(ic *config.VRRPInstance, in *instance.Instance) {
	p.mu.Lock()
	p.byVRID[[2]uint8{uint8(ic.VRID), uint8(ic.Family())}] = in
	p.mu.Unlock()
}

// Release undoes Configure and Register for a stopped instance and makes
// sure its VIPs are no longer forwarded.
func (p *Plane) Release(ic *config.VRRPInstance, in *instance.Instance) {
	key := [2]uint8{uint8(ic.VRID), uint8(ic.Family())}
	p.mu.Lock()
	if p.byVRID[key] == in {
		delete(p.byVRID, key)
	}
	p.mu.Unlock()
	if err := p.current().RemoveVRID(key[0], key[1]); err != nil {
		p.log.Warn("removing VRID from XDP failed", "vrid", ic.VRID, "err", err)
	}
	var vips []netip.Addr
	for _, v := range append(append([]config.VIP(nil), ic.VIPs...), ic.ExcludedVIPs...) {
		vips = append(vips, v.Prefix.Addr())
	}
	p.SetForwarding(vips, false)
}

// SetForwarding tells the program whether to forward vips (instance.Role).
func (p *Plane) SetForwarding(vips []netip.Addr, on bool) {
	dp := p.current()
	for _, v := range vips {
		if err := dp.SetVIPActive(v, on); err != nil {
			p.log.Warn("setting VIP role in XDP failed", "vip", v, "err", err)
		}
	}
}

// Forwarding reports whether the program already forwards all of vips
// (left so by a daemon that died while MASTER).
func (p *Plane) Forwarding(vips []netip.Addr) bool {
	dp := p.current()
	for _, v := range vips {
		if ok, err := dp.VIPActive(v); err != nil || !ok {
			return false
		}
	}
	return len(vips) > 0
}

// Peer is the program's record of the last valid advert of (vrid,
// family), as the instance's PeerSeen.
func (p *Plane) Peer(vrid, family uint8) instance.PeerSeen {
	return peer{p: p, vrid: vrid, family: family}
}

type peer struct {
	p      *Plane
	vrid   uint8
	family uint8
}

// LastAdvert ages the record (stamped with CLOCK_MONOTONIC in the kernel)
// against CLOCK_MONOTONIC now.
func (x peer) LastAdvert() (instance.PeerAdvert, bool) {
	ps, ok, err := x.p.current().Peer(x.vrid, x.family)
	if err != nil || !ok {
		return instance.PeerAdvert{}, false
	}
	age, err := sinceMonotonic(ps.Monotonic)
	if err != nil {
		return instance.PeerAdvert{}, false
	}
	return instance.PeerAdvert{Src: ps.Src, Priority: ps.Priority, Interval: ps.Interval, Age: age}, true
}

// sinceMonotonic is how long ago the kernel's CLOCK_MONOTONIC stamp t
// (bpf_ktime_get_ns) was (negative if t is ahead of the clock).
func sinceMonotonic(t time.Duration) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()) - t, nil
}

// DropCounters are the program's VRRP drops by reason.
func (p *Plane) DropCounters() (map[string]uint64, error) { return p.current().DropCounters() }

// Flows and PinFlows make the current dataplane's flow table a
// flowsync.Table that survives a re-open.
func (p *Plane) Flows(max int) ([]dataplane.Flow, error) { return p.current().Flows(max) }

// PinFlows pins flows learnt from a peer (see Flows).
func (p *Plane) PinFlows(f []dataplane.Flow) (int, error) { return p.current().PinFlows(f) }

// VIPActive reports whether the program forwards vip.
func (p *Plane) VIPActive(vip netip.Addr) (bool, error) { return p.current().VIPActive(vip) }

// SetVIPActive turns forwarding of vip on or off.
func (p *Plane) SetVIPActive(vip netip.Addr, on bool) error { return p.current().SetVIPActive(vip, on) }

// Counters are all the program's counters by name.
func (p *Plane) Counters() (map[string]uint64, error) { return p.current().Counters() }

// MapUsage is the occupancy of the program's maps.
func (p *Plane) MapUsage() (map[string]dataplane.MapUsage, error) { return p.current().MapUsage() }

// Name, Apply and Stats make the interface's current dataplane an
// lvs.Backend that survives a re-open.
func (p *Plane) Name() string                       { return "xdp" }
func (p *Plane) Apply(services []lvs.Service) error { return p.current().Apply(services) }
func (p *Plane) Stats() ([]lvs.ServiceStats, error) { return p.current().Stats() }

// Close stops reading adverts and releases the handles; the program stays
// attached and its maps pinned.
func (p *Plane) Close() error {
	p.cancel()
	return p.current().Close()
}
