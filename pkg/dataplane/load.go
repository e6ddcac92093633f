package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
)

// loadOptions are what load needs; Open fills them from the interface.
type loadOptions struct {
	pinDir    string // "" = no pinning (prog.Run tests)
	tableSize uint32
	ifindex   int
	ifname    string
	mac       net.HardwareAddr
	logger    *slog.Logger
}

// load creates (or reuses pinned) maps, loads the program and writes the
// interface entry. It does not attach.
func load(o loadOptions) (*Dataplane, error) {
	if o.tableSize == 0 {
		o.tableSize = DefaultTableSize
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	spec, err := loadXdpvip()
	if err != nil {
		return nil, fmt.Errorf("dataplane: parse BPF object: %w", err)
	}
	ring := spec.Maps[xdpvipMapMaglevTables].InnerMap
	if err := checkTableSize(o.tableSize, ring.MaxEntries); err != nil {
		return nil, err
	}
	ring.MaxEntries = o.tableSize
	var copts ebpf.CollectionOptions
	if o.pinDir == "" {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	} else {
		copts.Maps.PinPath = o.pinDir
	}
	d := &Dataplane{log: o.logger, ifindex: o.ifindex, ifname: o.ifname, mac: o.mac, m: o.tableSize, pinDir: o.pinDir}
	d.lvs.resolve = noResolver{}
	err = spec.LoadAndAssign(&d.objs, &copts)
	if errors.Is(err, ebpf.ErrMapIncompatible) && o.pinDir != "" {
		// Maps pinned by an xdpvip whose map layout differs (an
		// upgrade): replace them all, since ids in one map index others.
		// The pinned link stays, so attach swaps the program in place and
		// the old program forwards with its old maps until then.
		old, rerr := replaceOldPins(spec, o.pinDir)
		if rerr != nil {
			return nil, fmt.Errorf("%w: %v (replacing them: %v)", ErrIncompatiblePins, err, rerr)
		}
		o.logger.Warn("xdp dataplane: maps pinned by an xdpvip with another map layout replaced by new ones; established flows and persistence entries start again (Maglev sends most flows to the same real server), the daemon rewrites the VRRP and service entries",
			"dir", o.pinDir, "incompatible", old, "cause", err)
		err = spec.LoadAndAssign(&d.objs, &copts)
	}
	if err != nil {
		if uerr := unsupportedKernel(err); uerr != nil {
			return nil, uerr
		}
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("%w: %v", ErrIncompatiblePins, err)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("dataplane: verifier: %+v", ve)
		}
		return nil, fmt.Errorf("dataplane: load: %w", err)
	}
	var ic xdpvipIfaceConfig
	copy(ic.Mac[:], o.mac)
	ic.Ifindex = uint32(o.ifindex)
	if err := d.objs.Iface.Put(uint32(0), &ic); err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("dataplane: write iface: %w", err)
	}
	if err := d.lvs.init(d); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

// replaceOldPins removes every map pin of spec under dir when one of them
// does not match spec (its type, key, value, size or flags changed), and
// returns the names of those that did not match. The link pin is left.
func replaceOldPins(spec *ebpf.CollectionSpec, dir string) ([]string, error) {
	var incompatible, pinned []string
	for name, ms := range spec.Maps {
		if ms.Pinning != ebpf.PinByName {
			continue
		}
		path := filepath.Join(dir, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		pinned = append(pinned, path)
		if err != nil {
			incompatible = append(incompatible, name)
			continue
		}
		if ms.Compatible(m) != nil {
			incompatible = append(incompatible, name)
		}
		m.Close()
	}
	if len(incompatible) == 0 {
		return nil, errors.New("no pinned map differs from the program's")
	}
	for _, path := range pinned {
		if err := os.Remove(path); err != nil {
			return incompatible, err
		}
	}
	slices.Sort(incompatible)
	return incompatible, nil
}

// minTableSize is the smallest Maglev table size accepted.
const minTableSize = 3

// checkTableSize accepts a prime m in [minTableSize, max], max being the
// size the program declares its Maglev inner map with (MAGLEV_MAX_SIZE).
func checkTableSize(m, max uint32) error {
	ok := m >= minTableSize && m <= max
	for i := uint32(2); ok && i*i <= m; i++ {
		ok = m%i != 0
	}
	if !ok {
		return fmt.Errorf("%w: %d: want a prime between %d and %d", ErrBadTableSize, m, minTableSize, max)
	}
	return nil
}
