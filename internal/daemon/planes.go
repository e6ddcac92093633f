package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/ipvs"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
	"github.com/xdpvip/xdpvip/pkg/vrrpnet"
)

// planes is the daemon's dataplane: the XDP program on each VRRP interface
// (adverts in, VIP traffic forwarded), kernel IPVS, or nothing (adverts on a
// raw socket, virtual servers tracked but not forwarded).
type planes struct {
	kind  string // "xdp", "ipvs" or "none"
	log   *slog.Logger
	xdp   map[string]*xdpPlane // by interface
	ipvs  *ipvs.Backend
	vmacs *netif.VMACs
}

// xdpPlane is one interface's XDP program and the instances that receive
// adverts from its ring buffer.
type xdpPlane struct {
	dp     *dataplane.Dataplane
	mu     sync.Mutex
	byVRID map[[2]uint8]*instance // (vrid, family)
	cancel context.CancelFunc
}

// openPlanes picks and opens the dataplane opts.Dataplane asks for.
func openPlanes(opts Options, cfg *config.Config, log *slog.Logger) (*planes, error) {
	p := &planes{log: log, xdp: map[string]*xdpPlane{}, vmacs: netif.NewVMACs(nil)}
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
	ifaces := make([]string, 0, len(cfg.Instances)+1)
	for _, ic := range cfg.Instances {
		ifaces = append(ifaces, ic.Interface)
	}
	ifaces = append(ifaces, ecmpInterfaces(cfg, p.log)...) // bgp.go
	for _, iface := range ifaces {
		if _, ok := p.xdp[iface]; ok {
			continue
		}
		dp, err := dataplane.Open(dataplane.Options{Iface: iface, BPFDir: opts.BPFDir, Mode: opts.XDPMode, Logger: p.log})
		if err != nil {
			return fmt.Errorf("interface %s: %w", iface, err)
		}
		xp := &xdpPlane{dp: dp, byVRID: map[[2]uint8]*instance{}}
		ctx, cancel := context.WithCancel(context.Background())
		xp.cancel = cancel
		go xp.readAdverts(ctx, p.log)
		p.xdp[iface] = xp
	}
	return nil
}

// readAdverts hands each advert the XDP program accepted to its instance.
func (xp *xdpPlane) readAdverts(ctx context.Context, log *slog.Logger) {
	for {
		ev, err := xp.dp.ReadAdvert(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, dataplane.ErrClosed) {
				return
			}
			log.Warn("reading XDP advert events failed", "err", err)
			continue
		}
		xp.mu.Lock()
		in := xp.byVRID[[2]uint8{ev.VRID, ev.Family}]
		xp.mu.Unlock()
		if in != nil {
			// The program checked the TTL already.
			in.deliver(received{payload: ev.Payload, src: ev.Src, dst: ev.Dst, ttl: vrrp.TTL})
		}
	}
}

func (p *planes) closeXDP() {
	for name, xp := range p.xdp {
		xp.cancel()
		_ = xp.dp.Close()
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

// receiveFor arranges for in to receive its adverts and says from where:
// "xdp" (the program's ring buffer) or "socket" (the instance's raw socket).
func (p *planes) receiveFor(in *instance) (string, error) {
	xp := p.xdp[in.cfg.Interface]
	if xp == nil {
		return "socket", nil
	}
	fam := uint8(in.cfg.Family())
	cfg := dataplane.VRIDConfig{
		Version: in.recv.Version, Family: fam, AuthType: in.recv.AuthType,
		AuthPass: in.cfg.AuthPass, Peers: in.cfg.UnicastPeers,
	}
	if in.recv.Version == vrrp.Version2 {
		cfg.Interval = in.cfg.AdvertInt
	}
	if in.recv.VIPs != nil {
		cfg.AddrCount = uint8(len(in.recv.VIPs))
	}
	if err := xp.dp.ConfigureVRID(uint8(in.cfg.VRID), cfg); err != nil {
		return "", err
	}
	xp.mu.Lock()
	xp.byVRID[[2]uint8{uint8(in.cfg.VRID), fam}] = in
	xp.mu.Unlock()
	return "xdp", nil
}

// release undoes receiveFor and setRole for a stopped instance.
func (p *planes) release(in *instance) {
	xp := p.xdp[in.cfg.Interface]
	if xp == nil {
		return
	}
	fam := uint8(in.cfg.Family())
	xp.mu.Lock()
	if xp.byVRID[[2]uint8{uint8(in.cfg.VRID), fam}] == in {
		delete(xp.byVRID, [2]uint8{uint8(in.cfg.VRID), fam})
	}
	xp.mu.Unlock()
	if err := xp.dp.RemoveVRID(uint8(in.cfg.VRID), fam); err != nil {
		p.log.Warn("removing VRID from XDP failed", "vrid", in.cfg.VRID, "err", err)
	}
	p.setRole(in, false)
}

// setRole tells the XDP program whether to forward the instance's VIPs.
func (p *planes) setRole(in *instance, master bool) {
	xp := p.xdp[in.cfg.Interface]
	if xp == nil {
		return
	}
	for _, v := range in.vips {
		if err := xp.dp.SetVIPActive(v.Prefix.Addr(), master); err != nil {
			p.log.Warn("setting VIP role in XDP failed", "vip", v.Prefix.Addr(), "err", err)
		}
	}
}

// roleActive reports whether the XDP program already forwards all of the
// instance's VIPs (left so by a daemon that died while MASTER).
func (p *planes) roleActive(in *instance) bool {
	xp := p.xdp[in.cfg.Interface]
	if xp == nil || len(in.vips) == 0 {
		return false
	}
	for _, v := range in.vips {
		if ok, err := xp.dp.VIPActive(v.Prefix.Addr()); err != nil || !ok {
			return false
		}
	}
	return true
}

// dropCounters are the XDP program's VRRP drops by interface and reason.
func (p *planes) dropCounters() map[string]map[string]uint64 {
	if len(p.xdp) == 0 {
		return nil
	}
	out := map[string]map[string]uint64{}
	for name, xp := range p.xdp {
		c, err := xp.dp.DropCounters()
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
		fb := &fanoutBackend{}
		for _, xp := range p.xdp {
			fb.planes = append(fb.planes, xp.dp)
		}
		return fb
	}
	return &nullBackend{}
}

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
func openInstanceIO(ic *config.VRRPInstance) (*vrrpnet.Conn, *netif.Announcer, error) {
	conn, err := vrrpnet.Open(vrrpnet.Config{
		Iface: ic.Interface, IPv6: ic.Family() == 6, Source: ic.UnicastSrcIP, Peers: ic.UnicastPeers,
	})
	if err != nil {
		return nil, nil, err
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
		return nil, nil, fmt.Errorf("announcer on %s: %w", annIface, err)
	}
	return conn, ann, nil
}

// fanoutBackend gives every interface's XDP dataplane all services: each
// program forwards only the VIPs its interface's instances mark active
// (SetVIPActive), so the others' services cost a map entry and nothing per
// packet. Stats are summed over the interfaces.
type fanoutBackend struct {
	planes []*dataplane.Dataplane
}

func (r *fanoutBackend) Name() string { return "xdp" }

func (r *fanoutBackend) Apply(services []lvs.Service) error {
	var errs []error
	for _, dp := range r.planes {
		if err := dp.Apply(services); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *fanoutBackend) Stats() ([]lvs.ServiceStats, error) {
	merged := map[lvs.ServiceKey]*lvs.ServiceStats{}
	var order []lvs.ServiceKey
	for _, dp := range r.planes {
		st, err := dp.Stats()
		if err != nil {
			return nil, err
		}
		for _, s := range st {
			m := merged[s.Key]
			if m == nil {
				c := s
				c.Dests = append([]lvs.DestStats(nil), s.Dests...)
				merged[s.Key] = &c
				order = append(order, s.Key)
				continue
			}
			addServiceStats(m, s)
		}
	}
	out := make([]lvs.ServiceStats, 0, len(order))
	for _, k := range order {
		out = append(out, *merged[k])
	}
	return out, nil
}

func addServiceStats(m *lvs.ServiceStats, s lvs.ServiceStats) {
	m.Conns += s.Conns
	m.PktsIn += s.PktsIn
	m.PktsOut += s.PktsOut
	m.BytesIn += s.BytesIn
	m.BytesOut += s.BytesOut
	for _, d := range s.Dests {
		found := false
		for i := range m.Dests {
			if m.Dests[i].Addr == d.Addr && m.Dests[i].Port == d.Port {
				md := &m.Dests[i]
				md.Conns += d.Conns
				md.PktsIn += d.PktsIn
				md.PktsOut += d.PktsOut
				md.BytesIn += d.BytesIn
				md.BytesOut += d.BytesOut
				md.ActiveConn += d.ActiveConn
				md.InactConn += d.InactConn
				found = true
			}
		}
		if !found {
			m.Dests = append(m.Dests, d)
		}
	}
}

func (r *fanoutBackend) Close() error { return nil }

// nullBackend forwards nothing: with --dataplane none the virtual servers
// are still health-checked and listed.
type nullBackend struct{}

func (nullBackend) Name() string                       { return "none" }
func (nullBackend) Apply([]lvs.Service) error          { return nil }
func (nullBackend) Stats() ([]lvs.ServiceStats, error) { return nil, nil }
func (nullBackend) Close() error                       { return nil }
