// Package reloadplan says what a reload of keepalived.conf would do to a
// running daemon: which vrrp_instances stay untouched, get a new priority
// in place, restart, start or stop; which virtual servers, real servers
// and health checkers are added, removed or changed — decided by the same
// comparisons the daemon's reload applies (pkg/vrrp/instance's Unchanged
// and OnlyPriorityChanged, internal/lvsconfig's monitor keys), so
// `xdpvip reload --dry-run` shows exactly what a SIGHUP would do.
package reloadplan

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// Change is one object a reload would add, remove, change or leave alone.
type Change struct {
	// Kind is "vrrp_instance", "virtual_server", "real_server" or "checker".
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Action is "added", "removed", "restarted" (an instance that leaves and
	// rejoins), "priority" (an instance that keeps running with its new
	// priority), "changed" or "untouched".
	Action string `json:"action"`
	// Details say what differs, one "field: old -> new" each.
	Details []string `json:"details,omitempty"`
}

// Plan is what a reload of the configuration file would do, decided
// by the same rules apply uses.
type Plan struct {
	Changes []Change `json:"changes"`
	// Refused says why the reload would change nothing (the file does not
	// load, an instance's interface does not exist, the virtual servers do
	// not map); empty when it would be applied.
	Refused string `json:"refused,omitempty"`
}

// Result is the answer to the control socket's "reload" and
// "reload-dry-run" methods.
type Result struct {
	DryRun bool `json:"dry_run"`
	Plan   Plan `json:"plan"`
	// Applied is what the reload did (instances kept, restarted, …), empty
	// for a dry run or a refused reload.
	Applied string `json:"applied,omitempty"`
	// Error is a reload that was refused or only partly applied.
	Error string `json:"error,omitempty"`
}

// Compute compares the running configuration old with cfg. It opens
// nothing: only the existence of a new or restarted instance's interface is
// checked, the most common reason apply would refuse.
func Compute(old, cfg *config.Config) Plan {
	var p Plan
	add := func(c Change) { p.Changes = append(p.Changes, c) }
	for _, ic := range cfg.Instances {
		var oc *config.VRRPInstance
		if old != nil {
			oc = old.Instance(ic.Name)
		}
		c := Change{Kind: "vrrp_instance", Name: ic.Name}
		switch {
		case oc == nil:
			c.Action = "added"
		case instance.Unchanged(old, cfg, oc, ic):
			c.Action = "untouched"
		case instance.OnlyPriorityChanged(old, cfg, oc, ic):
			c.Action = "priority"
			c.Details = []string{fmt.Sprintf("priority: %d -> %d", oc.Priority, ic.Priority)}
		default:
			c.Action = "restarted"
			c.Details = fieldDiff(*oc, *ic)
			c.Details = append(c.Details, trackingDiff(old, cfg, ic)...)
		}
		if (c.Action == "added" || c.Action == "restarted") && p.Refused == "" && ic.Interface != "" {
			if _, err := net.InterfaceByName(ic.Interface); err != nil {
				p.Refused = fmt.Sprintf("%s: vrrp_instance %s: interface %s: %v", ic.Pos, ic.Name, ic.Interface, err)
			}
		}
		add(c)
	}
	if old != nil {
		for _, oc := range old.Instances {
			if cfg.Instance(oc.Name) == nil {
				add(Change{Kind: "vrrp_instance", Name: oc.Name, Action: "removed"})
			}
		}
	}
	newVS, err := lvsconfig.VirtualServers(cfg)
	if err != nil && p.Refused == "" {
		p.Refused = err.Error()
	}
	var oldVS []lvs.VirtualServer
	if old != nil {
		oldVS, _ = lvsconfig.VirtualServers(old)
	}
	p.Changes = append(p.Changes, virtualServerDiff(oldVS, newVS)...)
	newMon, err := lvsconfig.Monitors(cfg, nil)
	if err != nil && p.Refused == "" {
		p.Refused = err.Error()
	}
	var oldMon []lvsconfig.Monitor
	if old != nil {
		oldMon, _ = lvsconfig.Monitors(old, nil)
	}
	p.Changes = append(p.Changes, checkerDiff(oldMon, newMon)...)
	return p
}

// virtualServerDiff compares virtual servers and their real servers by
// key (protocol, address, port or fwmark).
func virtualServerDiff(old, cur []lvs.VirtualServer) []Change {
	var out []Change
	byKey := map[lvs.ServiceKey]lvs.VirtualServer{}
	for _, v := range old {
		byKey[v.Key] = v
	}
	seen := map[lvs.ServiceKey]bool{}
	for _, v := range cur {
		seen[v.Key] = true
		name := v.Key.String()
		o, ok := byKey[v.Key]
		if !ok {
			out = append(out, Change{Kind: "virtual_server", Name: name, Action: "added"})
			for _, rs := range v.RealServers {
				out = append(out, Change{Kind: "real_server", Name: name + " -> " + rsName(rs), Action: "added",
					Details: []string{fmt.Sprintf("weight: %d", rs.Weight)}})
			}
			continue
		}
		ov, nv := o, v
		ov.RealServers, nv.RealServers = nil, nil
		c := Change{Kind: "virtual_server", Name: name, Action: "untouched"}
		if d := fieldDiff(ov, nv); len(d) > 0 {
			c.Action, c.Details = "changed", d
		}
		out = append(out, c)
		oldRS := map[string]lvs.RealServer{}
		for _, rs := range o.RealServers {
			oldRS[rsName(rs)] = rs
		}
		newRS := map[string]bool{}
		for _, rs := range v.RealServers {
			n := rsName(rs)
			newRS[n] = true
			orc, ok := oldRS[n]
			switch {
			case !ok:
				out = append(out, Change{Kind: "real_server", Name: name + " -> " + n, Action: "added",
					Details: []string{fmt.Sprintf("weight: %d", rs.Weight)}})
			default:
				rc := Change{Kind: "real_server", Name: name + " -> " + n, Action: "untouched"}
				if d := fieldDiff(orc, rs); len(d) > 0 {
					rc.Action, rc.Details = "changed", d
				}
				out = append(out, rc)
			}
		}
		for _, rs := range o.RealServers {
			if !newRS[rsName(rs)] {
				out = append(out, Change{Kind: "real_server", Name: name + " -> " + rsName(rs), Action: "removed"})
			}
		}
	}
	for _, o := range old {
		if !seen[o.Key] {
			out = append(out, Change{Kind: "virtual_server", Name: o.Key.String(), Action: "removed"})
		}
	}
	return out
}

func rsName(rs lvs.RealServer) string {
	return lvs.RealServerKey{Addr: rs.Addr, Port: rs.Port}.String()
}

// checkerDiff compares the health monitors by real server: a monitor whose
// key (its whole configuration) changed is restarted, as applyLVS does.
func checkerDiff(old, cur []lvsconfig.Monitor) []Change {
	name := func(m lvsconfig.Monitor) string { return m.VS.String() + " -> " + m.RS.String() }
	oldBy := map[string]lvsconfig.Monitor{}
	for _, m := range old {
		oldBy[name(m)] = m
	}
	var out []Change
	seen := map[string]bool{}
	for _, m := range cur {
		n := name(m)
		seen[n] = true
		o, ok := oldBy[n]
		c := Change{Kind: "checker", Name: n, Action: "untouched"}
		switch {
		case !ok:
			c.Action = "added"
		case o.Key != m.Key:
			c.Action = "restarted"
			for i := 0; i < max(len(o.Config.Checkers), len(m.Config.Checkers)); i++ {
				switch {
				case i >= len(o.Config.Checkers):
					c.Details = append(c.Details, "added "+m.Config.Checkers[i].Name)
				case i >= len(m.Config.Checkers):
					c.Details = append(c.Details, "removed "+o.Config.Checkers[i].Name)
				case o.Config.Checkers[i].Name != m.Config.Checkers[i].Name:
					c.Details = append(c.Details, o.Config.Checkers[i].Name+" -> "+m.Config.Checkers[i].Name)
				default:
					c.Details = append(c.Details, prefixAll(m.Config.Checkers[i].Name+" ", fieldDiff(o.Config.Checkers[i].Timing, m.Config.Checkers[i].Timing))...)
				}
			}
		}
		out = append(out, c)
	}
	for _, o := range old {
		if !seen[name(o)] {
			out = append(out, Change{Kind: "checker", Name: name(o), Action: "removed"})
		}
	}
	return out
}

func prefixAll(p string, s []string) []string {
	for i := range s {
		s[i] = p + s[i]
	}
	return s
}

// trackingDiff names the vrrp_scripts instance ic tracks whose definition
// changed between the configurations (a change there restarts it too).
func trackingDiff(old, cfg *config.Config, ic *config.VRRPInstance) []string {
	var out []string
	for _, ts := range ic.TrackScripts {
		a, b := old.Script(ts.Name), cfg.Script(ts.Name)
		switch {
		case a == nil && b != nil:
			out = append(out, "vrrp_script "+ts.Name+": added")
		case a != nil && b == nil:
			out = append(out, "vrrp_script "+ts.Name+": removed")
		case a != nil:
			out = append(out, prefixAll("vrrp_script "+ts.Name+" ", fieldDiff(*a, *b))...)
		}
	}
	return out
}

// fieldDiff lists the exported fields of two values of the same struct
// type that differ, positions ignored: "name: old -> new" with the values
// as JSON (cut at 80 bytes).
func fieldDiff(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() != reflect.Struct || va.Type() != vb.Type() {
		return nil
	}
	var out []string
	t := va.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type == reflect.TypeFor[config.Pos]() {
			continue
		}
		x, y := withoutPos(va.Field(i)), withoutPos(vb.Field(i))
		if reflect.DeepEqual(x, y) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s -> %s", fieldName(f), short(x), short(y)))
	}
	sort.Strings(out)
	return out
}

// fieldName is the field's JSON name (keepalived's keyword) when it has one.
func fieldName(f reflect.StructField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
		return tag
	}
	return f.Name
}

// short renders a field's value for a plan line: durations and addresses
// as they are written, structs as their set fields (positions left out),
// cut at 100 bytes.
func short(v any) string {
	s := render(reflect.ValueOf(v))
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

var (
	posType      = reflect.TypeFor[config.Pos]()
	durationType = reflect.TypeFor[time.Duration]()
)

func render(v reflect.Value) string {
	if !v.IsValid() {
		return "-"
	}
	switch v.Type() {
	case durationType:
		return time.Duration(v.Int()).String()
	case reflect.TypeFor[netip.Addr](), reflect.TypeFor[netip.Prefix](), reflect.TypeFor[netip.AddrPort]():
		return fmt.Sprint(v.Interface())
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "-"
		}
		return render(v.Elem())
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = render(v.Index(i))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case reflect.Map:
		keys := v.MapKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, render(k)+"="+render(v.MapIndex(k)))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, " ") + "}"
	case reflect.Struct:
		var parts []string
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				return fmt.Sprint(v.Interface())
			}
			if f.Type == posType || v.Field(i).IsZero() {
				continue
			}
			parts = append(parts, fieldName(f)+"="+render(v.Field(i)))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case reflect.String:
		return strconvQuote(v.String())
	}
	return fmt.Sprint(v.Interface())
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// withoutPos returns a copy of v (as an interface value) with every
// config.Pos inside it zeroed, so values written on other lines compare
// equal.
func withoutPos(v reflect.Value) any {
	c := reflect.New(v.Type()).Elem()
	zeroPos(c, v)
	return c.Interface()
}

func zeroPos(dst, src reflect.Value) {
	if src.Type() == reflect.TypeFor[config.Pos]() {
		return
	}
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			if !src.Type().Field(i).IsExported() {
				// A value type such as netip.Addr: copied whole (it holds
				// no position).
				dst.Set(src)
				return
			}
		}
		for i := range src.NumField() {
			zeroPos(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			zeroPos(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		zeroPos(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			e := reflect.New(src.Type().Elem()).Elem()
			zeroPos(e, it.Value())
			m.SetMapIndex(it.Key(), e)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}

// String renders the plan as `xdpvip reload --dry-run` prints it: every
// change that is not "untouched", then a count of those that are.
func (p Plan) String() string {
	var b strings.Builder
	untouched := map[string]int{}
	for _, c := range p.Changes {
		if c.Action == "untouched" {
			untouched[c.Kind]++
			continue
		}
		fmt.Fprintf(&b, "%-10s %s %s\n", c.Action, c.Kind, c.Name)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "           %s\n", d)
		}
	}
	if len(untouched) > 0 {
		kinds := make([]string, 0, len(untouched))
		for k, n := range untouched {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(kinds)
		fmt.Fprintf(&b, "untouched: %s\n", strings.Join(kinds, ", "))
	}
	if b.Len() == 0 {
		b.WriteString("nothing to change\n")
	}
	if p.Refused != "" {
		fmt.Fprintf(&b, "REFUSED: %s (nothing would be applied)\n", p.Refused)
	}
	return b.String()
}
