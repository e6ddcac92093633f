package daemon

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
	"github.com/xdpvip/xdpvip/pkg/ipvs"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
	"github.com/xdpvip/xdpvip/pkg/vrrpnet"
)

// planes is the daemon's dataplane: the XDP program on each VRRP interface
// (adverts in, VIP traffic forwarded), kernel IPVS, or nothing (adverts on a
// raw socket, virtual servers tracked but not forwarded).
type planes struct {
	kind  string // "xdp", "ipvs" or "none"
	opts  Options
	log   *slog.Logger
	xdp   map[string]*xdpPlane // by interface
	ipvs  *ipvs.Backend
	vmacs *netif.VMACs
}

// xdpPlane is one interface's XDP program and the instances that receive
// adverts from its ring buffer. The program is re-opened when the
// interface is re-created (reopen).
type xdpPlane struct {
	log    *slog.Logger
	mu     sync.Mutex
	dp     *dataplane.Dataplane
	byVRID map[[2]uint8]*instance.Instance // (vrid, family)
	cancel context.CancelFunc
}

// current is the interface's dataplane as last opened.
func (xp *xdpPlane) current() *dataplane.Dataplane {
	xp.mu.Lock()
	defer xp.mu.Unlock()
	return xp.dp
}

// openPlanes picks and opens the dataplane opts.Dataplane asks for.
func openPlanes(opts Options, cfg *config.Config, log *slog.Logger) (*planes, error) {
	p := &planes{opts: opts, log: log, xdp: map[string]*xdpPlane{}, vmacs: netif.NewVMACs(nil)}
	mode := opts.Dataplane
	if mode == "" {
		mode = "auto"
	}
	switch mode {
	case "none":
		p.kind = "none"
		return p, nil
	case "ipvs":
		b, err := ipvs.New()
		if err != nil {
			return nil, fmt.Errorf("--dataplane ipvs: %w", err)
		}
		p.kind, p.ipvs = "ipvs", b
		return p, nil
	case "xdp", "auto":
	default:
		return nil, fmt.Errorf("--dataplane %q: want auto, xdp, ipvs or none", mode)
	}
	err := p.openXDP(opts, cfg)
	if err == nil {
		p.kind = "xdp"
		return p, nil
	}
	p.closeXDP()
	if mode == "xdp" {
		return nil, fmt.Errorf("--dataplane xdp: %w", err)
	}
	log.Warn("XDP dataplane unavailable, trying kernel IPVS", "err", err)
	if aerr := ipvs.Available(); aerr == nil {
		if b, berr := ipvs.New(); berr == nil {
			p.kind, p.ipvs = "ipvs", b
			return p, nil
		}
	}
	log.Warn("kernel IPVS unavailable: adverts on raw sockets, virtual servers checked but not forwarded")
	p.kind = "none"
	return p, nil
}

func (p *planes) openXDP(opts Options, cfg *config.Config) error {
	for _, ic := range cfg.Instances {
		if _, ok := p.xdp[ic.Interface]; ok {
			continue
		}
		dp, err := p.openDataplane(ic.Interface)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ic.Interface, err)
		}
		xp := &xdpPlane{dp: dp, log: p.log, byVRID: map[[2]uint8]*instance.Instance{}}
		ctx, cancel := context.WithCancel(context.Background())
		xp.cancel = cancel
		go xp.readAdverts(ctx, p.log)
		p.xdp[ic.Interface] = xp
	}
	return nil
}

func (p *planes) openDataplane(iface string) (*dataplane.Dataplane, error) {
	return dataplane.Open(dataplane.Options{Iface: iface, BPFDir: p.opts.BPFDir, Mode: p.opts.XDPMode, Logger: p.log})
}

// reopen loads the program again on a re-created interface (its pinned
// maps, VRID configuration included, are reused) and gives it services.
// Without XDP on iface there is nothing to do.
func (p *planes) reopen(iface string, services []lvs.Service) error {
	xp := p.xdp[iface]
	if xp == nil {
		return nil
	}
	dp, err := p.openDataplane(iface)
	if err != nil {
		return fmt.Errorf("re-opening XDP on %s: %w", iface, err)
	}
	xp.mu.Lock()
	old := xp.dp
	xp.dp = dp
	xp.mu.Unlock()
	_ = old.Close()
	return dp.Apply(services)
}

// readAdverts hands each advert the XDP program accepted to its instance.
func (xp *xdpPlane) readAdverts(ctx context.Context, log *slog.Logger) {
	for {
		dp := xp.current()
		ev, err := dp.ReadAdvert(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, dataplane.ErrClosed) {
				if xp.current() == dp {
					return
				}
				continue // re-opened
			}
			log.Warn("reading XDP advert events failed", "err", err)
			continue
		}
		xp.mu.Lock()
		in := xp.byVRID[[2]uint8{ev.VRID, ev.Family}]
		xp.mu.Unlock()
		if in != nil {
			in.Deliver(instance.Advert{Payload: ev.Payload, Src: ev.Src, Dst: ev.Dst})
		}
	}
}

func (p *planes) closeXDP() {
	for name, xp := range p.xdp {
		xp.cancel()
		_ = xp.current().Close()
		delete(p.xdp, name)
	}
}

// Close releases the handles. The XDP program and its pinned maps stay,
// so VIP traffic keeps flowing while the daemon restarts.
func (p *planes) Close() {
	p.closeXDP()
	if p.ipvs != nil {
		_ = p.ipvs.Close()
	}
}

func (p *planes) name() string { return p.kind }

// receivePath is where an instance's adverts come from and the dataplane
// side it drives.
type receivePath struct {
	name string // "xdp" (the program's ring buffer) or "socket"
	role instance.Role
	peer instance.PeerSeen
}

// receiveFor configures the XDP program (if any) on ic's interface to
// accept ic's adverts.
func (p *planes) receiveFor(ic *config.VRRPInstance) (receivePath, error) {
	xp := p.xdp[ic.Interface]
	if xp == nil {
		return receivePath{name: "socket"}, nil
	}
	rc := instance.RecvConfig(ic)
	fam := uint8(ic.Family())
	cfg := dataplane.VRIDConfig{
		Version: rc.Version, Family: fam, AuthType: rc.AuthType,
		AuthPass: ic.AuthPass, Peers: ic.UnicastPeers, AddrCount: uint8(len(rc.VIPs)),
	}
	if rc.Version == vrrp.Version2 {
		cfg.Interval = ic.AdvertInt
	}
	if err := xp.current().ConfigureVRID(uint8(ic.VRID), cfg); err != nil {
		return receivePath{}, err
	}
	return receivePath{name: "xdp", role: xp, peer: xdpPeer{xp: xp, vrid: uint8(ic.VRID), family: fam}}, nil
}

// register hands the adverts of ic's VRID to in.
func (p *planes) register(ic *config.VRRPInstance, in *instance.Instance) {
	if xp := p.xdp[ic.Interface]; xp != nil {
		xp.mu.Lock()
		xp.byVRID[[2]uint8{uint8(ic.VRID), uint8(ic.Family())}] = in
		xp.mu.Unlock()
	}
}

// release undoes receiveFor and register for a stopped instance, and makes
// sure its VIPs are no longer forwarded.
func (p *planes) release(ic *config.VRRPInstance, in *instance.Instance) {
	xp := p.xdp[ic.Interface]
	if xp == nil {
		return
	}
	key := [2]uint8{uint8(ic.VRID), uint8(ic.Family())}
	xp.mu.Lock()
	if xp.byVRID[key] == in {
		delete(xp.byVRID, key)
	}
	xp.mu.Unlock()
	if err := xp.current().RemoveVRID(key[0], key[1]); err != nil {
		p.log.Warn("removing VRID from XDP failed", "vrid", ic.VRID, "err", err)
	}
	var vips []netip.Addr
	for _, v := range append(append([]config.VIP(nil), ic.VIPs...), ic.ExcludedVIPs...) {
		vips = append(vips, v.Prefix.Addr())
	}
	xp.SetForwarding(vips, false)
}

// SetForwarding tells the XDP program whether to forward vips (Role).
func (xp *xdpPlane) SetForwarding(vips []netip.Addr, on bool) {
	dp := xp.current()
	for _, v := range vips {
		if err := dp.SetVIPActive(v, on); err != nil {
			xp.log.Warn("setting VIP role in XDP failed", "vip", v, "err", err)
		}
	}
}

// Forwarding reports whether the XDP program already forwards all of vips
// (left so by a daemon that died while MASTER).
func (xp *xdpPlane) Forwarding(vips []netip.Addr) bool {
	dp := xp.current()
	for _, v := range vips {
		if ok, err := dp.VIPActive(v); err != nil || !ok {
			return false
		}
	}
	return len(vips) > 0
}

// xdpPeer is the XDP program's record of the last valid advert of one
// (VRID, family), stamped with CLOCK_MONOTONIC (PeerSeen).
type xdpPeer struct {
	xp     *xdpPlane
	vrid   uint8
	family uint8
}

func (x xdpPeer) LastAdvert() (instance.PeerAdvert, bool) {
	ps, ok, err := x.xp.current().Peer(x.vrid, x.family)
	if err != nil || !ok {
		return instance.PeerAdvert{}, false
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return instance.PeerAdvert{}, false
	}
	return instance.PeerAdvert{
		Src: ps.Src, Priority: ps.Priority, Interval: ps.Interval,
		Age: time.Duration(ts.Nano()) - ps.Monotonic,
	}, true
}

// dropCounters are the XDP program's VRRP drops by interface and reason.
func (p *planes) dropCounters() map[string]map[string]uint64 {
	if len(p.xdp) == 0 {
		return nil
	}
	out := map[string]map[string]uint64{}
	for name, xp := range p.xdp {
		c, err := xp.current().DropCounters()
		if err != nil {
			continue
		}
		out[name] = c
	}
	return out
}

// backend is what the virtual-server manager drives.
func (p *planes) backend() lvs.Backend {
	switch {
	case p.ipvs != nil:
		return p.ipvs
	case len(p.xdp) > 0:
		fb := &lvs.Fanout{Kind: "xdp"}
		for _, xp := range p.xdp {
			fb.Backends = append(fb.Backends, xp)
		}
		return fb
	}
	return lvs.NullBackend{}
}

// Name, Apply, Stats and Close make the interface's current dataplane an
// lvs.Backend that survives a re-open.
func (xp *xdpPlane) Name() string                       { return "xdp" }
func (xp *xdpPlane) Apply(services []lvs.Service) error { return xp.current().Apply(services) }
func (xp *xdpPlane) Stats() ([]lvs.ServiceStats, error) { return xp.current().Stats() }
func (xp *xdpPlane) Close() error                       { return nil }

func (p *planes) createVMAC(ic *config.VRRPInstance) error {
	_, _, err := p.vmacs.Create(netif.VMACConfig{Parent: ic.Interface, VRID: uint8(ic.VRID), IPv6: ic.Family() == 6, Name: ic.VMACName})
	return err
}

func (p *planes) deleteVMAC(ic *config.VRRPInstance) {
	name := ic.VMACName
	if name == "" {
		name = netif.VMACName(uint8(ic.VRID))
	}
	if _, err := p.vmacs.Delete(name); err != nil {
		p.log.Warn("deleting VMAC failed", "name", name, "err", err)
	}
}

// openInstanceIO opens the raw socket adverts are sent on (and received on
// without XDP) and the announcer for gratuitous ARP / NA.
func openInstanceIO(ic *config.VRRPInstance, receive bool) (instance.IO, error) {
	conn, err := vrrpnet.Open(vrrpnet.Config{
		Iface: ic.Interface, IPv6: ic.Family() == 6, Source: ic.UnicastSrcIP, Peers: ic.UnicastPeers,
	})
	if err != nil {
		return instance.IO{}, err
	}
	annIface := ic.Interface
	var mac []byte
	if ic.UseVMAC {
		annIface = ic.VMACName
		if annIface == "" {
			annIface = netif.VMACName(uint8(ic.VRID))
		}
		mac = netif.VMACAddr(uint8(ic.VRID), ic.Family() == 6)
	}
	ann, err := netif.OpenAnnouncer(netif.AnnouncerConfig{Iface: annIface, MAC: mac})
	if err != nil {
		conn.Close()
		return instance.IO{}, fmt.Errorf("announcer on %s: %w", annIface, err)
	}
	io := instance.IO{Sender: conn, Announcer: ann, Close: func() error { return errors.Join(conn.Close(), ann.Close()) }}
	if receive {
		io.Receiver = conn
	}
	return io, nil
}
