package announce

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdpvip/xdpvip/pkg/bgp"
)

// collector exports the BGP speaker: route health injection's view
// (xdpvip_bgp_*) and GoBGP's own session metrics (bgp_*), from whichever
// speaker runs at scrape time.
type collector struct {
	rs                                    *Routes
	draining, established, announced, why *prometheus.Desc
}

// Collector is the routes' Prometheus collector.
func (rs *Routes) Collector() prometheus.Collector {
	return &collector{
		rs:          rs,
		draining:    prometheus.NewDesc("xdpvip_bgp_draining", "1 while the node is drained (xdpvip drain, SIGTERM).", nil, nil),
		established: prometheus.NewDesc("xdpvip_bgp_session_established", "1 while the BGP session with the neighbor is ESTABLISHED.", []string{"neighbor", "remote_as"}, nil),
		announced:   prometheus.NewDesc("xdpvip_bgp_route_announced", "1 while the prefix is announced.", []string{"prefix", "mode"}, nil),
		why:         prometheus.NewDesc("xdpvip_bgp_route_withdrawn", "1 for the reason a configured prefix is not announced.", []string{"prefix", "reason"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.draining, c.established, c.announced, c.why} {
		ch <- d
	}
	bgp.DescribeCollector(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.rs.Status()
	if st == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v bool, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, b2f(v), l...)
	}
	gauge(c.draining, st.Draining)
	for _, s := range st.Sessions {
		gauge(c.established, s.State == "ESTABLISHED", s.Neighbor, strconv.FormatUint(uint64(s.RemoteAS), 10))
	}
	for _, r := range st.Routes {
		gauge(c.announced, r.Announced, r.Prefix, r.Mode)
		if r.Reason != "" {
			gauge(c.why, true, r.Prefix, r.Reason)
		}
	}
	b := c.rs.current()
	if b == nil {
		return
	}
	b.mu.Lock()
	sp := b.speaker
	b.mu.Unlock()
	if sp != nil {
		sp.Collector().Collect(ch)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
