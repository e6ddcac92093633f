package lvs

import (
	"fmt"
	"slices"
	"sync"
)

// QuorumEvent reports that a virtual server gained or lost quorum
// (keepalived's quorum_up / quorum_down).
type QuorumEvent struct {
	Service ServiceKey
	Up      bool
	// LiveWeight is the sum of the weights of the live real servers after
	// the change; Quorum and Hysteresis are the configured values.
	LiveWeight, Quorum, Hysteresis int
	// Shutdown is set when the event comes from Shutdown (omega).
	Shutdown bool
}

// ManagerOptions are the Manager's injected notifications. Callbacks run
// synchronously, in order, after the state change and outside the
// Manager's state lock; they must return quickly (run scripts
// asynchronously) and must not change the Manager's state from inside.
type ManagerOptions struct {
	// OnQuorum runs quorum_up / quorum_down. (A live real server's
	// notify_down at shutdown with omega is its health monitor's job.)
	OnQuorum func(QuorumEvent)
}

// Manager holds the virtual servers, their real servers' health and
// weights, and drives a Backend: it computes the desired []Service and
// calls Backend.Apply whenever (and only when) that changes. It is safe for
// concurrent use.
//
// Cost of a health or weight change: O(real servers of that virtual
// server) to rebuild its destination list, O(virtual servers) to hand the
// backend the full state, and nothing when the desired state is unchanged.
// Update batches many changes into one Apply.
type Manager struct {
	backend Backend
	opts    ManagerOptions

	mu       sync.Mutex
	services []*vsState // sorted by key
	byKey    map[ServiceKey]*vsState
	// stale is set when the last Apply failed or was never made, so the
	// next update applies even if nothing else changed.
	stale bool

	// notifyMu keeps notifications in order across concurrent updates.
	notifyMu sync.Mutex
}

type vsState struct {
	cfg     VirtualServer // normalized copy
	reals   []*rsState    // sorted by key
	byKey   map[RealServerKey]*rsState
	sorry   *SorryServer // normalized, nil for none
	live    int          // sum of weights of live real servers
	quorate bool
	// desired is what the backend should program; its Dests slice is
	// never modified once built (a new slice replaces it), so it can be
	// handed to the backend without copying.
	desired Service
}

type rsState struct {
	key     RealServerKey
	method  string
	tunnel  Tunnel // normalised; zero unless method is TUN
	inhibit bool
	// configured is the configured weight, weight the effective one
	// (configured, or set by SetWeight).
	configured, weight int
	dynamic            bool
	up                 bool
}

// NewManager returns a Manager with no virtual servers driving backend.
func NewManager(backend Backend, opts ManagerOptions) *Manager {
	return &Manager{backend: backend, opts: opts, byKey: map[ServiceKey]*vsState{}, stale: true}
}

// Configure replaces the set of virtual servers (at start and on reload).
// Real servers that stay keep their health and dynamic weight, virtual
// servers that stay keep their quorum state; new real servers start up,
// or down with alpha. Quorum changes caused by the new configuration are
// notified. Invalid configuration changes nothing and returns an error
// wrapping ErrInvalidConfig.
func (m *Manager) Configure(vss []VirtualServer) error {
	next := make([]*vsState, 0, len(vss))
	byKey := make(map[ServiceKey]*vsState, len(vss))
	for i := range vss {
		st, err := newVSState(&vss[i])
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, vss[i].Key, err)
		}
		if _, dup := byKey[st.cfg.Key]; dup {
			return fmt.Errorf("%w: %s: configured twice", ErrInvalidConfig, st.cfg.Key)
		}
		byKey[st.cfg.Key] = st
		next = append(next, st)
	}
	slices.SortFunc(next, func(a, b *vsState) int { return compareServiceKeys(a.cfg.Key, b.cfg.Key) })

	m.mu.Lock()
	var events []func()
	for _, st := range next {
		old := m.byKey[st.cfg.Key]
		if old != nil {
			st.quorate = old.quorate
			for _, rs := range st.reals {
				if o := old.byKey[rs.key]; o != nil {
					rs.up = o.up
					if o.dynamic {
						rs.dynamic, rs.weight = true, o.weight
					}
				}
			}
		}
		st.live = 0
		for _, rs := range st.reals {
			if rs.up {
				st.live += rs.weight
			}
		}
		events = append(events, m.evaluateQuorum(st)...)
		st.desired = Service{
			Key:                    st.cfg.Key,
			Scheduler:              st.cfg.Scheduler,
			PersistenceTimeout:     st.cfg.PersistenceTimeout,
			PersistenceGranularity: st.cfg.PersistenceGranularity,
			Dests:                  st.buildDests(),
		}
	}
	changed := len(next) != len(m.services)
	for i := 0; !changed && i < len(next); i++ {
		changed = !sameService(next[i].desired, m.services[i].desired)
	}
	m.services, m.byKey = next, byKey
	err := m.applyLocked(changed)
	m.unlockAndNotify(events)
	return err
}

func newVSState(vs *VirtualServer) (*vsState, error) {
	if err := validateKey(vs.Key); err != nil {
		return nil, err
	}
	st := &vsState{cfg: *vs, byKey: make(map[RealServerKey]*rsState, len(vs.RealServers)), quorate: true}
	st.cfg.Key = canonicalKey(vs.Key)
	st.cfg.RealServers = nil
	if st.cfg.Scheduler == "" {
		st.cfg.Scheduler = DefaultScheduler
	}
	method, tunnel, err := normalizeForwarding(vs.Method, vs.Tunnel, DefaultMethod, Tunnel{})
	if err != nil {
		return nil, err
	}
	st.cfg.Method, st.cfg.Tunnel = method, tunnel
	if st.cfg.Quorum == 0 {
		st.cfg.Quorum = DefaultQuorum
	}
	switch {
	case st.cfg.Quorum < 0:
		return nil, fmt.Errorf("quorum %d is negative", st.cfg.Quorum)
	case st.cfg.Hysteresis < 0:
		return nil, fmt.Errorf("hysteresis %d is negative", st.cfg.Hysteresis)
	case st.cfg.PersistenceTimeout < 0:
		return nil, fmt.Errorf("persistence timeout %v is negative", st.cfg.PersistenceTimeout)
	}
	port := func(p uint16) uint16 {
		if p == 0 {
			return vs.Key.Port
		}
		return p
	}
	for _, r := range vs.RealServers {
		key := RealServerKey{Addr: r.Addr.Unmap(), Port: port(r.Port)}
		if !r.Addr.IsValid() {
			return nil, fmt.Errorf("real server without an address")
		}
		if r.Weight < 0 {
			return nil, fmt.Errorf("real server %s: weight %d is negative", key, r.Weight)
		}
		if _, dup := st.byKey[key]; dup {
			return nil, fmt.Errorf("real server %s configured twice", key)
		}
		m, t, err := normalizeForwarding(r.Method, r.Tunnel, method, tunnel)
		if err != nil {
			return nil, fmt.Errorf("real server %s: %v", key, err)
		}
		rs := &rsState{key: key, method: m, tunnel: t, inhibit: vs.InhibitOnFailure, configured: r.Weight, weight: r.Weight, up: !vs.Alpha}
		if r.InhibitOnFailure != nil {
			rs.inhibit = *r.InhibitOnFailure
		}
		if r.Alpha != nil {
			rs.up = !*r.Alpha
		}
		st.byKey[key] = rs
		st.reals = append(st.reals, rs)
	}
	slices.SortFunc(st.reals, func(a, b *rsState) int {
		return compareDests(Dest{Addr: a.key.Addr, Port: a.key.Port}, Dest{Addr: b.key.Addr, Port: b.key.Port})
	})
	if vs.Sorry != nil {
		s := *vs.Sorry
		if !s.Addr.IsValid() {
			return nil, fmt.Errorf("sorry server without an address")
		}
		s.Addr, s.Port = s.Addr.Unmap(), port(s.Port)
		if s.Weight == 0 {
			s.Weight = DefaultWeight
		}
		if s.Weight < 0 {
			return nil, fmt.Errorf("sorry server weight %d is negative", s.Weight)
		}
		if s.Method, s.Tunnel, err = normalizeForwarding(s.Method, s.Tunnel, method, tunnel); err != nil {
			return nil, fmt.Errorf("sorry server: %v", err)
		}
		if _, dup := st.byKey[RealServerKey{s.Addr, s.Port}]; dup {
			return nil, fmt.Errorf("sorry server %s is also a real server", RealServerKey{s.Addr, s.Port})
		}
		st.sorry = &s
	}
	st.cfg.Sorry = st.sorry
	return st, nil
}

// evaluateQuorum applies keepalived's quorum rule to st.live and returns
// the notification to deliver, if the state changed.
func (m *Manager) evaluateQuorum(st *vsState) []func() {
	q, h := st.cfg.Quorum, st.cfg.Hysteresis
	switch {
	case !st.quorate && st.live >= q+h:
		st.quorate = true
	case st.quorate && (st.live == 0 || st.live < q-h):
		st.quorate = false
	default:
		return nil
	}
	ev := QuorumEvent{Service: st.cfg.Key, Up: st.quorate, LiveWeight: st.live, Quorum: q, Hysteresis: h}
	if m.opts.OnQuorum == nil {
		return nil
	}
	return []func(){func() { m.opts.OnQuorum(ev) }}
}

// sorryInUse reports whether the sorry server replaces the real servers.
func (st *vsState) sorryInUse() bool { return st.sorry != nil && !st.quorate }

// buildDests computes the destination list the backend should program.
func (st *vsState) buildDests() []Dest {
	dests := make([]Dest, 0, len(st.reals)+1)
	sorry := st.sorryInUse()
	for _, rs := range st.reals {
		d := Dest{Addr: rs.key.Addr, Port: rs.key.Port, Method: rs.method, Tunnel: rs.tunnel}
		switch {
		case rs.up && !sorry:
			d.Weight = rs.weight
		case !rs.up && rs.inhibit:
			d.Weight = 0
		default:
			// Down and not inhibited, or live but displaced by the
			// sorry server (keepalived removes those too).
			continue
		}
		dests = append(dests, d)
	}
	if s := st.sorry; s != nil && (sorry || s.Inhibit) {
		d := Dest{Addr: s.Addr, Port: s.Port, Method: s.Method, Tunnel: s.Tunnel}
		if sorry {
			d.Weight = s.Weight
		}
		i, _ := slices.BinarySearchFunc(dests, d, compareDests)
		dests = slices.Insert(dests, i, d)
	}
	return dests
}

func sameService(a, b Service) bool {
	return a.Key == b.Key && a.Scheduler == b.Scheduler &&
		a.PersistenceTimeout == b.PersistenceTimeout &&
		a.PersistenceGranularity == b.PersistenceGranularity &&
		slices.Equal(a.Dests, b.Dests)
}

// applyLocked hands the backend the full desired state if it changed (or
// the last Apply failed). m.mu must be held.
func (m *Manager) applyLocked(changed bool) error {
	if !changed && !m.stale {
		return nil
	}
	services := make([]Service, len(m.services))
	for i, st := range m.services {
		services[i] = st.desired
	}
	if err := m.backend.Apply(services); err != nil {
		m.stale = true
		return fmt.Errorf("lvs: %s backend: %w", m.backend.Name(), err)
	}
	m.stale = false
	return nil
}

// unlockAndNotify releases m.mu and delivers events in order.
func (m *Manager) unlockAndNotify(events []func()) {
	if len(events) == 0 {
		m.mu.Unlock()
		return
	}
	m.notifyMu.Lock()
	m.mu.Unlock()
	defer m.notifyMu.Unlock()
	for _, ev := range events {
		ev()
	}
}

// Tx collects health and weight changes made inside Manager.Update.
type Tx struct {
	m       *Manager
	touched []*vsState
	seen    map[*vsState]bool
}

// Update runs fn with the state locked and then applies all its changes to
// the backend at once (at most one Apply). Changes made before fn returns
// an error are kept and applied too.
func (m *Manager) Update(fn func(tx *Tx) error) error {
	m.mu.Lock()
	tx := &Tx{m: m, seen: map[*vsState]bool{}}
	fnErr := fn(tx)
	changed := false
	var events []func()
	// Quorum is judged once per virtual server on the batch's result, in
	// the order the batch first touched them.
	for _, st := range tx.touched {
		events = append(events, m.evaluateQuorum(st)...)
		dests := st.buildDests()
		if !slices.Equal(dests, st.desired.Dests) {
			st.desired.Dests = dests
			changed = true
		}
	}
	err := m.applyLocked(changed)
	m.unlockAndNotify(events)
	if fnErr != nil {
		return fnErr
	}
	return err
}

func (tx *Tx) lookup(vs ServiceKey, rs RealServerKey) (*vsState, *rsState, error) {
	st := tx.m.byKey[canonicalKey(vs)]
	rs.Addr = rs.Addr.Unmap()
	if st == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownService, vs)
	}
	r := st.byKey[rs]
	if r == nil {
		return nil, nil, fmt.Errorf("%w: %s in %s", ErrUnknownRealServer, rs, vs)
	}
	return st, r, nil
}

// SetHealth marks a real server up or down, as its checkers decided.
func (tx *Tx) SetHealth(vs ServiceKey, rs RealServerKey, up bool) error {
	st, r, err := tx.lookup(vs, rs)
	if err != nil || r.up == up {
		return err
	}
	r.up = up
	if up {
		st.live += r.weight
	} else {
		st.live -= r.weight
	}
	tx.touch(st)
	return nil
}

// SetWeight sets a real server's effective weight (misc_dynamic). A
// weight other than the configured one is dynamic: it survives a reload
// (Configure). The configured weight itself, which the daemon reports
// with every up event, is not: a reload then applies a new configured
// weight.
func (tx *Tx) SetWeight(vs ServiceKey, rs RealServerKey, weight int) error {
	if weight < 0 {
		return fmt.Errorf("%w: %d is negative", ErrInvalidWeight, weight)
	}
	st, r, err := tx.lookup(vs, rs)
	if err != nil {
		return err
	}
	r.dynamic = weight != r.configured
	if r.weight == weight {
		return nil
	}
	if r.up {
		st.live += weight - r.weight
	}
	r.weight = weight
	tx.touch(st)
	return nil
}

func (tx *Tx) touch(st *vsState) {
	if !tx.seen[st] {
		tx.seen[st] = true
		tx.touched = append(tx.touched, st)
	}
}

// SetHealth marks one real server up or down and applies the result.
func (m *Manager) SetHealth(vs ServiceKey, rs RealServerKey, up bool) error {
	return m.Update(func(tx *Tx) error { return tx.SetHealth(vs, rs, up) })
}

// SetWeight sets one real server's effective weight and applies the result.
func (m *Manager) SetWeight(vs ServiceKey, rs RealServerKey, weight int) error {
	return m.Update(func(tx *Tx) error { return tx.SetWeight(vs, rs, weight) })
}

// Services returns the desired state the backend was last asked to
// program (or will be, if that Apply failed). The Dests slices are shared
// and must not be modified.
func (m *Manager) Services() []Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Service, len(m.services))
	for i, st := range m.services {
		out[i] = st.desired
	}
	return out
}

// Shutdown runs the omega quorum notifier: for every virtual server with
// omega, quorum down if it was up (the real servers' notify_down at
// shutdown is run by their health monitors' Stop). It does not touch the
// backend (the daemon decides whether services stay).
func (m *Manager) Shutdown() {
	m.mu.Lock()
	var events []func()
	for _, st := range m.services {
		if !st.cfg.Omega {
			continue
		}
		if st.quorate && m.opts.OnQuorum != nil {
			ev := QuorumEvent{Service: st.cfg.Key, Up: false, LiveWeight: st.live, Quorum: st.cfg.Quorum, Hysteresis: st.cfg.Hysteresis, Shutdown: true}
			events = append(events, func() { m.opts.OnQuorum(ev) })
		}
	}
	m.unlockAndNotify(events)
}
