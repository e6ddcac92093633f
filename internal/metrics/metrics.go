// Package metrics exposes the daemon on Prometheus's /metrics (and a
// /healthz) with prometheus/client_golang.
//
// Names follow what dashboards already use: the keepalived exporter's
// keepalived_* names and labels for VRRP, node_exporter's IPVS label set
// (local_address, local_port, remote_address, remote_port, proto,
// local_mark) for virtual and real servers under an xdpvip_ prefix, and
// xdpvip_* for what only xdpvip has (XDP drops, map occupancy, reloads,
// advert gaps). Every scrape reads one Snapshot from the daemon, so the
// exposition is always one consistent view and the daemon keeps no
// Prometheus state of its own.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddress is where keepalived exporters listen by convention.
const DefaultAddress = "127.0.0.1:9165"

// Source is what the daemon offers a scrape.
type Source interface {
	MetricsSnapshot() Snapshot
}

// Snapshot is the daemon's state as one scrape sees it.
type Snapshot struct {
	Instances []Instance
	Scripts   []Script
	Services  []Service
	// XDP holds the XDP program's counters by interface and counter name
	// (VRRP drop reasons, valid adverts, forwarded packets…).
	XDP map[string]map[string]uint64
	// Maps is the occupancy of the XDP maps by interface and map name.
	Maps map[string]map[string]MapUsage
	// Reloads counts SIGHUP/`xdpvip reload` results: "applied", "refused".
	Reloads map[string]uint64
	// Checks are health-check results and latency per checker.
	Checks []Check
}

// Instance is one vrrp_instance.
type Instance struct {
	Name, Interface string
	VRID            int
	// State is 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, as keepalived numbers them.
	State      int
	VIPs       []string
	AdvertsIn  uint64
	AdvertsOut uint64
	// BecomeMaster and ReleaseMaster count transitions into and out of MASTER.
	BecomeMaster, ReleaseMaster uint64
	PriorityZeroIn              uint64
	PriorityZeroOut             uint64
	GARPDelays                  uint64
	// Conflicts counts split-brain evidence seen while MASTER (ARP / NA
	// for a VIP with another MAC, adverts from another router);
	// ConflictActive is set while an episode is on; Reannounced counts
	// the re-announcements after one.
	Conflicts, Reannounced uint64
	ConflictActive         bool
	// Drops counts adverts the daemon dropped for this instance, by reason
	// (pkg/vrrp DropReason names, plus queue_full).
	Drops map[string]uint64
	// Failovers counts becoming MASTER by cause (master_down, preempt,
	// priority, sync_group, startup…).
	Failovers map[string]uint64
	// AdvertGaps are gaps between consecutive adverts from the MASTER, in
	// seconds, as kernel-side arrival times give them (nil when unknown).
	AdvertGaps *Histogram
	// LargestGapRatio is the largest recent gap over Master_Down_Interval.
	LargestGapRatio float64
}

// Histogram is a cumulative histogram: Counts[i] observations ≤ Bounds[i].
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Script is one vrrp_script.
type Script struct {
	Name string
	// OK is the rise/fall-counted result (keepalived_script_status: 1 good).
	OK bool
	// Running reports whether the script is scheduled (keepalived_script_state).
	Running bool
}

// Service is one virtual server with its real servers.
type Service struct {
	Address                                   string // local_address
	Port                                      int    // local_port
	Protocol                                  string // proto: TCP, UDP, SCTP
	Mark                                      uint32 // local_mark (fwmark services)
	Conns, PktsIn, PktsOut, BytesIn, BytesOut uint64
	Backends                                  []Backend
}

// Backend is one real server.
type Backend struct {
	Address                                   string
	Port                                      int
	Weight                                    int
	Healthy                                   bool
	Conns, PktsIn, PktsOut, BytesIn, BytesOut uint64
	ActiveConn, InactConn                     uint64
}

// MapUsage is one BPF map's occupancy.
type MapUsage struct {
	Entries, MaxEntries uint64
}

// Check is one health checker of one real server.
type Check struct {
	Service, Backend, Kind string
	Success, Failure       uint64
	Latency                *Histogram
}

// keepalived's numbering of states, for keepalived_vrrp_state.
const (
	StateInit   = 0
	StateBackup = 1
	StateMaster = 2
	StateFault  = 3
)

// keepalivedDrops maps pkg/vrrp drop reasons onto the keepalived exporter's
// per-instance error counters. Reasons not listed are exported only as
// xdpvip_vrrp_advert_drops_total{reason}.
var keepalivedDrops = []struct {
	metric  string
	help    string
	reasons []string
}{
	{"keepalived_packet_length_errors_total", "Adverts dropped for a length that does not match their address count.", []string{"truncated", "length"}},
	{"keepalived_advertisements_interval_errors_total", "Adverts dropped for an advert interval different from ours (VRRPv2).", []string{"interval"}},
	{"keepalived_ip_ttl_errors_total", "Adverts dropped for a TTL or hop limit other than 255.", []string{"ttl"}},
	{"keepalived_invalid_type_received_total", "Adverts dropped for a VRRP type other than ADVERTISEMENT.", []string{"type"}},
	{"keepalived_address_list_errors_total", "Adverts whose address list differs from the configured VIPs.", []string{"addr_count"}},
	{"keepalived_authentication_invalid_total", "Adverts with an authentication type xdpvip does not know.", []string{"auth_invalid"}},
	{"keepalived_authentication_mismatch_total", "Adverts with an authentication type different from ours.", []string{"auth_type"}},
	{"keepalived_authentication_failure_total", "Adverts whose password differs from ours.", []string{"auth"}},
}

var instLabels = []string{"iname", "intf", "vrid"}

type collector struct {
	src   Source
	build map[string]string

	up, state, in, out, becomeMaster, releaseMaster, prioZeroIn, prioZeroOut, garpDelay *prometheus.Desc
	errs                                                                                []*prometheus.Desc
	drops, failovers, gaps, gapRatio                                                    *prometheus.Desc
	scriptStatus, scriptState                                                           *prometheus.Desc
	conflicts, conflictActive, reannounced                                              *prometheus.Desc
	svcConns, svcPktsIn, svcPktsOut, svcBytesIn, svcBytesOut                            *prometheus.Desc
	beConns, bePktsIn, bePktsOut, beBytesIn, beBytesOut, beWeight, beHealthy            *prometheus.Desc
	beActive, beInact                                                                   *prometheus.Desc
	xdp, mapUsage, reloads, buildInfo                                                   *prometheus.Desc
	checkResults, checkLatency                                                          *prometheus.Desc
}

func newCollector(src Source, build map[string]string) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	svc := []string{"local_address", "local_port", "proto", "local_mark"}
	be := append(append([]string{}, svc...), "remote_address", "remote_port")
	c := &collector{
		src: src, build: build,
		up:             d("keepalived_up", "1 while the xdpvip daemon answers."),
		state:          d("keepalived_vrrp_state", "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT; one series per VIP.", "iname", "intf", "vrid", "ip_address"),
		in:             d("keepalived_advertisements_received_total", "Valid adverts received.", instLabels...),
		out:            d("keepalived_advertisements_sent_total", "Adverts sent.", instLabels...),
		becomeMaster:   d("keepalived_become_master_total", "Transitions into MASTER.", instLabels...),
		releaseMaster:  d("keepalived_release_master_total", "Transitions out of MASTER.", instLabels...),
		prioZeroIn:     d("keepalived_priority_zero_received_total", "Priority-0 adverts received (the MASTER leaving).", instLabels...),
		prioZeroOut:    d("keepalived_priority_zero_sent_total", "Priority-0 adverts sent (leaving MASTER).", instLabels...),
		garpDelay:      d("keepalived_gratuitous_arp_delay_total", "Gratuitous ARP / NA rounds sent after becoming MASTER.", instLabels...),
		drops:          d("xdpvip_vrrp_advert_drops_total", "Adverts the daemon dropped for an instance, by reason.", append(append([]string{}, instLabels...), "reason")...),
		failovers:      d("xdpvip_vrrp_become_master_by_cause_total", "Transitions into MASTER by cause.", append(append([]string{}, instLabels...), "cause")...),
		gaps:           d("xdpvip_vrrp_advert_gap_seconds", "Gap between consecutive adverts from the MASTER (kernel arrival times).", instLabels...),
		gapRatio:       d("xdpvip_vrrp_advert_gap_ratio", "Largest recent advert gap as a fraction of Master_Down_Interval (1 = a failover).", instLabels...),
		conflicts:      d("xdpvip_vrrp_split_brain_conflicts_total", "Split-brain evidence seen while MASTER: ARP / NA for a VIP with another MAC, adverts from another router.", instLabels...),
		conflictActive: d("xdpvip_vrrp_split_brain_active", "1 while split-brain evidence keeps coming (until 3 advert intervals without).", instLabels...),
		reannounced:    d("xdpvip_vrrp_split_brain_reannounced_total", "VIP re-announcements (GARP / NA and notify_master) after a split brain ended.", instLabels...),
		scriptStatus:   d("keepalived_script_status", "vrrp_script result after rise/fall: 1 good, 0 bad.", "name"),
		scriptState:    d("keepalived_script_state", "vrrp_script scheduling: 1 running, 0 idle.", "name"),
		svcConns:       d("xdpvip_ipvs_connections_total", "Connections (flows) scheduled by a virtual server.", svc...),
		svcPktsIn:      d("xdpvip_ipvs_incoming_packets_total", "Packets in through a virtual server.", svc...),
		svcPktsOut:     d("xdpvip_ipvs_outgoing_packets_total", "Packets out through a virtual server (0 in DR: replies bypass it).", svc...),
		svcBytesIn:     d("xdpvip_ipvs_incoming_bytes_total", "Bytes in through a virtual server.", svc...),
		svcBytesOut:    d("xdpvip_ipvs_outgoing_bytes_total", "Bytes out through a virtual server.", svc...),
		beConns:        d("xdpvip_ipvs_backend_connections_total", "Connections (flows) scheduled to a real server.", be...),
		bePktsIn:       d("xdpvip_ipvs_backend_incoming_packets_total", "Packets forwarded to a real server.", be...),
		bePktsOut:      d("xdpvip_ipvs_backend_outgoing_packets_total", "Packets from a real server through the balancer.", be...),
		beBytesIn:      d("xdpvip_ipvs_backend_incoming_bytes_total", "Bytes forwarded to a real server.", be...),
		beBytesOut:     d("xdpvip_ipvs_backend_outgoing_bytes_total", "Bytes from a real server through the balancer.", be...),
		beActive:       d("xdpvip_ipvs_backend_connections_active", "Active connections of a real server (IPVS).", be...),
		beInact:        d("xdpvip_ipvs_backend_connections_inactive", "Inactive connections of a real server (IPVS).", be...),
		beWeight:       d("xdpvip_ipvs_backend_weight", "Weight of a real server as scheduled (0 while down with inhibit_on_failure).", be...),
		beHealthy:      d("xdpvip_ipvs_backend_healthy", "1 while a real server's checkers say it is up.", be...),
		xdp:            d("xdpvip_xdp_packets_total", "XDP program counters by interface and counter (drop reasons, valid adverts, forwarded).", "interface", "counter"),
		mapUsage:       d("xdpvip_bpf_map_usage_ratio", "BPF map entries in use as a fraction of max_entries.", "interface", "map"),
		reloads:        d("xdpvip_reloads_total", "Configuration reloads by result.", "result"),
		buildInfo:      d("xdpvip_build_info", "Build of the running daemon (always 1).", "version", "commit", "bpf_object", "goversion"),
		checkResults:   d("xdpvip_healthcheck_results_total", "Health-check results by real server and checker.", "service", "backend", "checker", "result"),
		checkLatency:   d("xdpvip_healthcheck_duration_seconds", "Health-check duration by real server and checker.", "service", "backend", "checker"),
	}
	for _, k := range keepalivedDrops {
		c.errs = append(c.errs, d(k.metric, k.help, instLabels...))
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.state, c.in, c.out, c.becomeMaster, c.releaseMaster, c.prioZeroIn,
		c.prioZeroOut, c.garpDelay, c.drops, c.failovers, c.gaps, c.gapRatio, c.scriptStatus, c.scriptState,
		c.svcConns, c.svcPktsIn, c.svcPktsOut, c.svcBytesIn, c.svcBytesOut, c.beConns, c.bePktsIn, c.bePktsOut,
		c.beBytesIn, c.beBytesOut, c.beActive, c.beInact, c.beWeight, c.beHealthy, c.xdp, c.mapUsage, c.reloads,
		c.buildInfo, c.checkResults, c.checkLatency, c.conflicts, c.conflictActive, c.reannounced} {
		ch <- d
	}
	for _, d := range c.errs {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.MetricsSnapshot()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	hist := func(d *prometheus.Desc, h *Histogram, l ...string) {
		if h == nil {
			return
		}
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b] = h.Counts[i]
		}
		ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, l...)
	}
	gauge(c.up, 1)
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1,
		c.build["version"], c.build["commit"], c.build["bpf_object"], c.build["goversion"])
	for _, in := range s.Instances {
		l := []string{in.Name, in.Interface, strconv.Itoa(in.VRID)}
		for _, v := range in.VIPs {
			gauge(c.state, float64(in.State), in.Name, in.Interface, l[2], v)
		}
		if len(in.VIPs) == 0 {
			gauge(c.state, float64(in.State), in.Name, in.Interface, l[2], "")
		}
		counter(c.in, in.AdvertsIn, l...)
		counter(c.out, in.AdvertsOut, l...)
		counter(c.becomeMaster, in.BecomeMaster, l...)
		counter(c.releaseMaster, in.ReleaseMaster, l...)
		counter(c.prioZeroIn, in.PriorityZeroIn, l...)
		counter(c.prioZeroOut, in.PriorityZeroOut, l...)
		counter(c.garpDelay, in.GARPDelays, l...)
		counter(c.conflicts, in.Conflicts, l...)
		counter(c.reannounced, in.Reannounced, l...)
		gauge(c.conflictActive, b2f(in.ConflictActive), l...)
		for i, k := range keepalivedDrops {
			var n uint64
			for _, r := range k.reasons {
				n += in.Drops[r]
			}
			counter(c.errs[i], n, l...)
		}
		for r, n := range in.Drops {
			counter(c.drops, n, append(l, r)...)
		}
		for cause, n := range in.Failovers {
			counter(c.failovers, n, append(l, cause)...)
		}
		hist(c.gaps, in.AdvertGaps, l...)
		gauge(c.gapRatio, in.LargestGapRatio, l...)
	}
	for _, sc := range s.Scripts {
		gauge(c.scriptStatus, b2f(sc.OK), sc.Name)
		gauge(c.scriptState, b2f(sc.Running), sc.Name)
	}
	for _, sv := range s.Services {
		l := []string{sv.Address, strconv.Itoa(sv.Port), sv.Protocol, markLabel(sv.Mark)}
		counter(c.svcConns, sv.Conns, l...)
		counter(c.svcPktsIn, sv.PktsIn, l...)
		counter(c.svcPktsOut, sv.PktsOut, l...)
		counter(c.svcBytesIn, sv.BytesIn, l...)
		counter(c.svcBytesOut, sv.BytesOut, l...)
		for _, b := range sv.Backends {
			bl := append(append([]string{}, l...), b.Address, strconv.Itoa(b.Port))
			counter(c.beConns, b.Conns, bl...)
			counter(c.bePktsIn, b.PktsIn, bl...)
			counter(c.bePktsOut, b.PktsOut, bl...)
			counter(c.beBytesIn, b.BytesIn, bl...)
			counter(c.beBytesOut, b.BytesOut, bl...)
			gauge(c.beActive, float64(b.ActiveConn), bl...)
			gauge(c.beInact, float64(b.InactConn), bl...)
			gauge(c.beWeight, float64(b.Weight), bl...)
			gauge(c.beHealthy, b2f(b.Healthy), bl...)
		}
	}
	for iface, cs := range s.XDP {
		for name, n := range cs {
			counter(c.xdp, n, iface, name)
		}
	}
	for iface, ms := range s.Maps {
		for name, u := range ms {
			if u.MaxEntries > 0 {
				gauge(c.mapUsage, float64(u.Entries)/float64(u.MaxEntries), iface, name)
			}
		}
	}
	for res, n := range s.Reloads {
		counter(c.reloads, n, res)
	}
	for _, ck := range s.Checks {
		counter(c.checkResults, ck.Success, ck.Service, ck.Backend, ck.Kind, "success")
		counter(c.checkResults, ck.Failure, ck.Service, ck.Backend, ck.Kind, "failure")
		hist(c.checkLatency, ck.Latency, ck.Service, ck.Backend, ck.Kind)
	}
}

// markLabel is node_exporter's local_mark: empty for address services.
func markLabel(m uint32) string {
	if m == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(m), 10)
}

// Registry returns a registry with the daemon's collector and the Go and
// process collectors.
func Registry(src Source, build map[string]string) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(newCollector(src, build),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Server serves /metrics and /healthz.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen starts serving on addr ("HOST:PORT"). healthy answers /healthz:
// nil is 200 "ok", an error is 503 with its text.
func Listen(addr string, reg *prometheus.Registry, healthy func() error, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address actually listened on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
