// Package dataplane loads the xdpvip XDP program (bpf/xdp_vip.c) onto one
// interface, pins its maps and link under <bpf-dir>/<ifname>/, and is the Go
// side of every map: VRRP instance configuration, the advert ring buffer,
// drop counters, VIP ownership and the LVS-DR tables (it implements
// lvs.Backend).
//
// A Dataplane is opened once per interface:
//
//	dp, err := dataplane.Open(dataplane.Options{Iface: "eth0", BPFDir: "/sys/fs/bpf/xdpvip"})
//	dp.ConfigureVRID(51, dataplane.VRIDConfig{Version: 3, Family: 4})
//	ev, err := dp.ReadAdvert(ctx)   // valid adverts, decoded in XDP
//	dp.SetVIPActive(vip, true)      // on MASTER; false on BACKUP
//	dp.Apply(services)              // virtual servers (lvs.Backend)
//
// Open reuses pinned maps and the pinned link when they exist, so a daemon
// restart does not interrupt forwarding. Close releases the handles and
// leaves the program attached; Detach removes it.
package dataplane

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/pkg/maglev"
	"github.com/xdpvip/xdpvip/pkg/netif"
)

// DefaultBPFDir is where pins live unless Options.BPFDir says otherwise.
const DefaultBPFDir = "/sys/fs/bpf/xdpvip"

// DefaultTableSize is the Maglev table size M (prime) used when
// Options.TableSize is 0: pkg/maglev's default, which is also the largest
// the program's maglev_tables inner map is declared with.
const DefaultTableSize = maglev.DefaultSize

// linkPin is the file name of the pinned XDP link inside the interface dir.
const linkPin = "link"

// Errors returned (wrapped) by this package.
var (
	ErrNoInterface      = errors.New("dataplane: no such interface")
	ErrBadMode          = errors.New("dataplane: mode must be native, generic or auto")
	ErrBadTableSize     = errors.New("dataplane: bad Maglev table size")
	ErrNotAttached      = errors.New("dataplane: no pinned XDP link")
	ErrBadVRID          = errors.New("dataplane: bad VRRP instance configuration")
	ErrBadService       = errors.New("dataplane: bad virtual server")
	ErrTableFull        = errors.New("dataplane: table full")
	ErrClosed           = errors.New("dataplane: closed")
	ErrIncompatiblePins = errors.New("dataplane: pinned maps do not match this program (run detach first)")
)

// Options configure Open.
type Options struct {
	// Iface is the interface to attach to.
	Iface string
	// BPFDir is the bpffs directory for pins (DefaultBPFDir when empty).
	// bpffs is mounted there when it is not already.
	BPFDir string
	// Mode is "native", "generic" or "auto" (default: native, falling
	// back to generic with a log line).
	Mode string
	// Logger receives attach decisions and neighbour-resolution problems.
	Logger *slog.Logger
	// TableSize is the Maglev table size M, a prime no larger than the
	// program's MAGLEV_MAX_SIZE (DefaultTableSize when 0).
	TableSize uint32
}

// Dataplane is the XDP program attached to one interface and its maps.
type Dataplane struct {
	objs    xdpvipObjects
	link    link.Link // nil when loaded without attaching (tests)
	log     *slog.Logger
	ifindex int
	ifname  string
	mac     net.HardwareAddr
	m       uint32 // Maglev table size
	pinDir  string

	mu      sync.Mutex
	ring    *ringbuf.Reader
	lvs     lvsState
	closed  bool
	nl      *netif.NeighCache // nil when loaded without an interface
	vlans   *netlinkVLANs     // nil when loaded without an interface
	stopNbr chan struct{}
	nbrDone chan struct{}
}

// ObjectHash is the SHA-256 (hex, first 16 digits) of the embedded BPF object.
func ObjectHash() string {
	sum := sha256.Sum256(_XdpvipBytes)
	return hex.EncodeToString(sum[:8])
}

// Open loads (or reuses) the program and maps for opts.Iface and attaches it.
func Open(opts Options) (*Dataplane, error) {
	if opts.BPFDir == "" {
		opts.BPFDir = DefaultBPFDir
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Mode == "" {
		opts.Mode = "auto"
	}
	if opts.Mode != "native" && opts.Mode != "generic" && opts.Mode != "auto" {
		return nil, fmt.Errorf("%w: %q", ErrBadMode, opts.Mode)
	}
	ifc, err := net.InterfaceByName(opts.Iface)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoInterface, opts.Iface, err)
	}
	if err := ensureBPFFS(opts.BPFDir); err != nil {
		return nil, err
	}
	pinDir := filepath.Join(opts.BPFDir, opts.Iface)
	if err := os.MkdirAll(pinDir, 0o700); err != nil {
		return nil, fmt.Errorf("dataplane: pin dir: %w", err)
	}
	d, err := load(loadOptions{
		pinDir:    pinDir,
		tableSize: opts.TableSize,
		ifindex:   ifc.Index,
		ifname:    ifc.Name,
		mac:       ifc.HardwareAddr,
		logger:    opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	nc, err := netif.NewNeighCache(netif.NeighOptions{Logger: opts.Logger})
	if err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	d.lvs.resolve = nc
	d.nl = nc
	// Without VLAN information the program still forwards; frames keep
	// their tags.
	if vl, err := newNetlinkVLANs(); err != nil {
		d.log.Warn("xdp dataplane: no VLAN lookups, tagged frames keep their tags", "err", err)
	} else {
		d.lvs.links, d.vlans = vl, vl
	}
	if err := d.attach(opts.Mode); err != nil {
		if d.vlans != nil {
			d.vlans.close()
		}
		nc.Close()
		d.objs.Close()
		return nil, err
	}
	d.startNeighbourRefresh(nc.Changed())
	return d, nil
}

// attach reuses the pinned link (swapping in the freshly loaded program,
// which shares the pinned maps) or creates and pins a new one.
func (d *Dataplane) attach(mode string) error {
	path := filepath.Join(d.pinDir, linkPin)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		err := l.Update(d.objs.XdpVip)
		if err == nil {
			d.log.Info("reusing pinned XDP link", "iface", d.ifname, "pin", path)
			d.link = l
			return nil
		}
		if !errors.Is(err, unix.ENOLINK) {
			l.Close()
			return fmt.Errorf("dataplane: update pinned link %s: %w", path, err)
		}
		// The link's interface was deleted (this one has the same name and
		// a new ifindex): the pin attaches nothing any more.
		d.log.Warn("pinned XDP link belongs to a deleted interface: attaching anew", "iface", d.ifname, "pin", path)
		if err := l.Unpin(); err != nil {
			l.Close()
			return fmt.Errorf("dataplane: unpin severed link %s: %w", path, err)
		}
		l.Close()
	}
	var flags []link.XDPAttachFlags
	switch mode {
	case "native":
		flags = []link.XDPAttachFlags{link.XDPDriverMode}
	case "generic":
		flags = []link.XDPAttachFlags{link.XDPGenericMode}
	default:
		flags = []link.XDPAttachFlags{link.XDPDriverMode, link.XDPGenericMode}
	}
	var errs []error
	for i, f := range flags {
		l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.XdpVip, Interface: d.ifindex, Flags: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", modeName(f), err))
			if i+1 < len(flags) {
				d.log.Warn("native XDP attach failed, falling back to generic", "iface", d.ifname, "err", err)
			}
			continue
		}
		if err := l.Pin(path); err != nil {
			l.Close()
			return fmt.Errorf("dataplane: pin link: %w", err)
		}
		d.log.Info("attached XDP program", "iface", d.ifname, "mode", modeName(f), "pin", path)
		d.link = l
		return nil
	}
	return fmt.Errorf("dataplane: attach to %s: %w", d.ifname, errors.Join(errs...))
}

func modeName(f link.XDPAttachFlags) string {
	if f == link.XDPGenericMode {
		return "generic"
	}
	return "native"
}

// Close stops the neighbour refresher and releases all handles. The program
// stays attached and the maps stay pinned.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	ring := d.ring
	d.mu.Unlock()
	if d.stopNbr != nil {
		close(d.stopNbr)
		<-d.nbrDone
	}
	var errs []error
	if ring != nil {
		errs = append(errs, ring.Close())
	}
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	d.lvs.closeTables()
	if d.nl != nil {
		d.nl.Close()
	}
	if d.vlans != nil {
		d.vlans.close()
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

// Detach removes the XDP program from iface and deletes its pins.
func Detach(bpfDir, iface string) error {
	if bpfDir == "" {
		bpfDir = DefaultBPFDir
	}
	dir := filepath.Join(bpfDir, iface)
	path := filepath.Join(dir, linkPin)
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotAttached, path, err)
	}
	errs := []error{l.Unpin(), l.Close()}
	entries, err := os.ReadDir(dir)
	if err == nil {
		for _, e := range entries {
			errs = append(errs, os.Remove(filepath.Join(dir, e.Name())))
		}
	}
	errs = append(errs, os.Remove(dir))
	return errors.Join(errs...)
}

// ensureBPFFS makes dir a directory on a bpffs, mounting one if needed:
// inside an existing bpffs it just creates dir; if dir's nearest existing
// ancestor is the conventional /sys/fs/bpf without a bpffs (as inside
// `ip netns exec`, which remounts /sys), it mounts bpffs there; otherwise
// it creates dir and mounts bpffs on it.
//
// Pins live as long as the bpffs mount that holds them: a bpffs mounted in
// a private mount namespace disappears with it.
func ensureBPFFS(dir string) error {
	dir = filepath.Clean(dir)
	anc := dir
	for {
		if _, err := os.Stat(anc); err == nil {
			break
		}
		parent := filepath.Dir(anc)
		if parent == anc {
			break
		}
		anc = parent
	}
	onBPF := func(p string) (bool, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			return false, fmt.Errorf("dataplane: statfs %s: %w", p, err)
		}
		return st.Type == unix.BPF_FS_MAGIC, nil
	}
	ok, err := onBPF(anc)
	if err != nil {
		return err
	}
	mountAt := ""
	switch {
	case ok:
	case anc == "/sys/fs/bpf":
		mountAt = anc
	case anc == dir:
		mountAt = dir
	default:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("dataplane: bpf dir: %w", err)
		}
		mountAt = dir
	}
	if mountAt != "" {
		if err := unix.Mount("bpf", mountAt, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("dataplane: mount bpffs at %s: %w", mountAt, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dataplane: bpf dir: %w", err)
	}
	return nil
}

// addr16 stores a into the 16-byte form the maps use (IPv4 in the first 4).
func addr16(a netip.Addr) (out [16]byte) {
	if a.Is4() {
		b := a.As4()
		copy(out[:], b[:])
		return out
	}
	return a.As16()
}

// addrFrom16 is addr16's inverse.
func addrFrom16(b [16]byte, family uint8) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return 4
	}
	return 6
}
