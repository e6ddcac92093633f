package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// errBadFlag wraps every command-line error.
var errBadFlag = errors.New("bad flag")

// scenario is one kind of failure at one advert interval.
type scenario struct {
	Name      string // "crash-v2", ...
	Graceful  bool   // SIGTERM instead of SIGKILL + cable down
	Version   int    // VRRP version, 2 or 3
	AdvertInt time.Duration
}

// knownScenarios are the scenarios --scenarios can name, in table order.
var knownScenarios = []scenario{
	{Name: "crash-v2", Version: 2, AdvertInt: time.Second},
	{Name: "graceful-v2", Graceful: true, Version: 2, AdvertInt: time.Second},
	{Name: "crash-v3", Version: 3, AdvertInt: 100 * time.Millisecond},
	{Name: "graceful-v3", Graceful: true, Version: 3, AdvertInt: 100 * time.Millisecond},
}

// describe is the scenario's table heading.
func (s scenario) describe() string {
	kind := "crash (SIGKILL + cable down)"
	if s.Graceful {
		kind = "graceful (SIGTERM)"
	}
	return fmt.Sprintf("%s: %s, VRRPv%d advert_int %s", s.Name, kind, s.Version, formatSeconds(s.AdvertInt))
}

// parseScenarios parses a comma-separated --scenarios list ("all" for
// every scenario). The result keeps the order of knownScenarios.
func parseScenarios(s string) ([]scenario, error) {
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "all" {
			for _, k := range knownScenarios {
				want[k.Name] = true
			}
			continue
		}
		if !slices.ContainsFunc(knownScenarios, func(k scenario) bool { return k.Name == f }) {
			return nil, fmt.Errorf("%w: scenario %q (known: crash-v2, graceful-v2, crash-v3, graceful-v3, all)", errBadFlag, f)
		}
		want[f] = true
	}
	var out []scenario
	for _, k := range knownScenarios {
		if want[k.Name] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scenario to run", errBadFlag)
	}
	return out, nil
}

// summary is the median, minimum and maximum of the runs that met a
// metric, and how many runs there were.
type summary struct {
	N, Runs          int
	Median, Min, Max time.Duration
}

// summarize summarizes samples; a negative sample is a run that never met
// the metric and counts only in Runs.
func summarize(samples []time.Duration) summary {
	s := summary{Runs: len(samples)}
	var ok []time.Duration
	for _, d := range samples {
		if d >= 0 {
			ok = append(ok, d)
		}
	}
	s.N = len(ok)
	if s.N == 0 {
		return s
	}
	slices.Sort(ok)
	s.Min, s.Max = ok[0], ok[s.N-1]
	if s.N%2 == 1 {
		s.Median = ok[s.N/2]
	} else {
		s.Median = (ok[s.N/2-1] + ok[s.N/2]) / 2
	}
	return s
}

// cell renders a summary as "median [min–max] n/runs" in milliseconds.
func (s summary) cell() string {
	if s.N == 0 {
		return fmt.Sprintf("- (0/%d)", s.Runs)
	}
	c := fmt.Sprintf("%s [%s-%s]", ms(s.Median), ms(s.Min), ms(s.Max))
	if s.N != s.Runs {
		c += fmt.Sprintf(" (%d/%d)", s.N, s.Runs)
	}
	return c
}

// ms renders d in milliseconds: one decimal below 100 ms, none above.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// ratio renders a/b of two medians ("-" when either is missing).
func ratio(a, b summary) string {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(a.Median)/float64(b.Median))
}

// results holds every sample: scenario -> daemon -> metric -> one per run.
type results map[string]map[string]*[numMetrics][]time.Duration

func (r results) add(sc, daemon string, m [numMetrics]time.Duration) {
	if r[sc] == nil {
		r[sc] = map[string]*[numMetrics][]time.Duration{}
	}
	if r[sc][daemon] == nil {
		r[sc][daemon] = new([numMetrics][]time.Duration)
	}
	for i := range numMetrics {
		r[sc][daemon][i] = append(r[sc][daemon][i], m[i])
	}
}

func (r results) summary(sc, daemon string, m metric) summary {
	d := r[sc][daemon]
	if d == nil {
		return summary{}
	}
	return summarize(d[m])
}

// printTable writes one block per scenario: a row per metric, a column per
// daemon (median [min-max] in ms), and the ratio of each other daemon's
// median to keepalived's when keepalived ran.
func printTable(w io.Writer, r results, scenarios []scenario, daemons []daemonSpec) {
	var ref string
	for _, d := range daemons {
		if d.Keepalived {
			ref = d.Name
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"metric (ms from failure)"}
	for _, d := range daemons {
		header = append(header, d.Name+" median [min-max]")
	}
	if ref != "" {
		for _, d := range daemons {
			if d.Name != ref {
				header = append(header, d.Name+"/"+ref)
			}
		}
	}
	for i, sc := range scenarios {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintln(tw, sc.describe())
		fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
		for m := range numMetrics {
			row := []string{"  " + m.String()}
			for _, d := range daemons {
				row = append(row, r.summary(sc.Name, d.Name, m).cell())
			}
			if ref != "" {
				for _, d := range daemons {
					if d.Name != ref {
						row = append(row, ratio(r.summary(sc.Name, d.Name, m), r.summary(sc.Name, ref, m)))
					}
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()
}
