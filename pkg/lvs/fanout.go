package lvs

import "errors"

// Fanout gives every backend all services and sums their counters: the
// XDP dataplane of each interface gets every service, and each program
// forwards only the VIPs its interface's instances mark active, so the
// others' services cost a map entry and nothing per packet.
type Fanout struct {
	// Kind is what Name returns.
	Kind     string
	Backends []Backend
}

// Name is Kind.
func (r *Fanout) Name() string { return r.Kind }

// Apply applies services to every backend.
func (r *Fanout) Apply(services []Service) error {
	var errs []error
	for _, dp := range r.Backends {
		if err := dp.Apply(services); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats sums the backends' counters per service and real server.
func (r *Fanout) Stats() ([]ServiceStats, error) {
	merged := map[ServiceKey]*ServiceStats{}
	var order []ServiceKey
	for _, dp := range r.Backends {
		st, err := dp.Stats()
		if err != nil {
			return nil, err
		}
		for _, s := range st {
			m := merged[s.Key]
			if m == nil {
				c := s
				c.Dests = append([]DestStats(nil), s.Dests...)
				merged[s.Key] = &c
				order = append(order, s.Key)
				continue
			}
			addServiceStats(m, s)
		}
	}
	out := make([]ServiceStats, 0, len(order))
	for _, k := range order {
		out = append(out, *merged[k])
	}
	return out, nil
}

func addServiceStats(m *ServiceStats, s ServiceStats) {
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

// Close closes nothing: the backends belong to the caller.
func (r *Fanout) Close() error { return nil }

// NullBackend forwards nothing: with --dataplane none the virtual servers
// are still health-checked and listed.
type NullBackend struct{}

// Name is "none".
func (NullBackend) Name() string { return "none" }

// Apply does nothing.
func (NullBackend) Apply([]Service) error { return nil }

// Stats has nothing to count.
func (NullBackend) Stats() ([]ServiceStats, error) { return nil, nil }

// Close does nothing.
func (NullBackend) Close() error { return nil }
