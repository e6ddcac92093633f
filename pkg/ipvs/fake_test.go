package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	kipvs "github.com/cloudflare/ipvs"
)

// fakeKernel is an in-memory IPVS that behaves like the kernel where
// Apply depends on it: an empty table is os.ErrNotExist, services get the
// "hashed" flag, real servers on a local address report the Local method,
// and creating something that exists is an error.
type fakeKernel struct {
	services []*fakeService
	local    map[netip.Addr]bool
	calls    []string // mutating calls, in order
}

type fakeService struct {
	svc   kipvs.Service
	dests []kipvs.Destination
}

var errExists = errors.New("fake: exists")

func svcID(s kipvs.Service) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("fwm%d/%d", s.FWMark, s.Family)
	}
	return fmt.Sprintf("%d/%s", s.Protocol, netip.AddrPortFrom(s.Address, s.Port))
}

func (f *fakeKernel) find(s kipvs.Service) *fakeService {
	for _, fs := range f.services {
		if svcID(fs.svc) == svcID(s) {
			return fs
		}
	}
	return nil
}

func (f *fakeKernel) Info() (kipvs.Info, error)     { return kipvs.Info{}, nil }
func (f *fakeKernel) Config() (kipvs.Config, error) { return kipvs.Config{}, nil }
func (f *fakeKernel) SetConfig(kipvs.Config) error  { return nil }

func (f *fakeKernel) Services() ([]kipvs.ServiceExtended, error) {
	if len(f.services) == 0 {
		return nil, os.ErrNotExist
	}
	var out []kipvs.ServiceExtended
	for _, fs := range f.services {
		out = append(out, kipvs.ServiceExtended{Service: fs.svc, Stats64: kipvs.Stats{Connections: 7, IncomingPackets: 70}})
	}
	return out, nil
}

func (f *fakeKernel) Service(s kipvs.Service) (kipvs.ServiceExtended, error) {
	fs := f.find(s)
	if fs == nil {
		return kipvs.ServiceExtended{}, os.ErrNotExist
	}
	return kipvs.ServiceExtended{Service: fs.svc}, nil
}

func (f *fakeKernel) CreateService(s kipvs.Service) error {
	f.calls = append(f.calls, "CreateService "+svcID(s))
	if f.find(s) != nil {
		return errExists
	}
	s.Flags |= kipvs.ServiceHashed
	f.services = append(f.services, &fakeService{svc: s})
	return nil
}

func (f *fakeKernel) UpdateService(s kipvs.Service) error {
	f.calls = append(f.calls, "UpdateService "+svcID(s))
	fs := f.find(s)
	if fs == nil {
		return os.ErrNotExist
	}
	s.Flags |= kipvs.ServiceHashed
	fs.svc = s
	return nil
}

func (f *fakeKernel) RemoveService(s kipvs.Service) error {
	f.calls = append(f.calls, "RemoveService "+svcID(s))
	for i, fs := range f.services {
		if svcID(fs.svc) == svcID(s) {
			f.services = slices.Delete(f.services, i, i+1)
			return nil
		}
	}
	return os.ErrNotExist
}

func (f *fakeKernel) Destinations(s kipvs.Service) ([]kipvs.DestinationExtended, error) {
	fs := f.find(s)
	if fs == nil || len(fs.dests) == 0 {
		return nil, os.ErrNotExist
	}
	var out []kipvs.DestinationExtended
	for _, d := range fs.dests {
		out = append(out, kipvs.DestinationExtended{Destination: d, ActiveConnections: 2, InactiveConnections: 3,
			Stats64: kipvs.Stats{Connections: 5, IncomingPackets: 50, IncomingBytes: 500}})
	}
	return out, nil
}

func (f *fakeKernel) destIndex(fs *fakeService, d kipvs.Destination) int {
	return slices.IndexFunc(fs.dests, func(x kipvs.Destination) bool { return x.Address == d.Address && x.Port == d.Port })
}

func (f *fakeKernel) CreateDestination(s kipvs.Service, d kipvs.Destination) error {
	f.calls = append(f.calls, fmt.Sprintf("CreateDestination %s %s w%d", svcID(s), netip.AddrPortFrom(d.Address, d.Port), d.Weight))
	fs := f.find(s)
	if fs == nil {
		return os.ErrNotExist
	}
	if f.destIndex(fs, d) >= 0 {
		return errExists
	}
	if f.local[d.Address] {
		d.FwdMethod = kipvs.Local
	}
	fs.dests = append(fs.dests, d)
	return nil
}

func (f *fakeKernel) UpdateDestination(s kipvs.Service, d kipvs.Destination) error {
	f.calls = append(f.calls, fmt.Sprintf("UpdateDestination %s %s w%d", svcID(s), netip.AddrPortFrom(d.Address, d.Port), d.Weight))
	fs := f.find(s)
	if fs == nil {
		return os.ErrNotExist
	}
	i := f.destIndex(fs, d)
	if i < 0 {
		return os.ErrNotExist
	}
	if f.local[d.Address] {
		d.FwdMethod = kipvs.Local
	}
	fs.dests[i] = d
	return nil
}

func (f *fakeKernel) RemoveDestination(s kipvs.Service, d kipvs.Destination) error {
	f.calls = append(f.calls, fmt.Sprintf("RemoveDestination %s %s", svcID(s), netip.AddrPortFrom(d.Address, d.Port)))
	fs := f.find(s)
	if fs == nil {
		return os.ErrNotExist
	}
	i := f.destIndex(fs, d)
	if i < 0 {
		return os.ErrNotExist
	}
	fs.dests = slices.Delete(fs.dests, i, i+1)
	return nil
}
