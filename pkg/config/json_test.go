package config

import (
	"encoding/json"
	"testing"
)

// TestJSON checks that the JSON form carries the model under keepalived's
// keyword names, times in seconds, and the diagnostics.
func TestJSON(t *testing.T) {
	cfg, diags, err := Load("../../examples/seed-master.conf")
	if err != nil {
		t.Fatal(err)
	}
	out, err := JSON(cfg, diags)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Valid       bool
		Diagnostics []struct{ Pos, Keyword, Severity, Message string }
		Config      struct {
			Instances []map[string]any `json:"vrrp_instance"`
			VS        []struct {
				IP          string  `json:"ip"`
				Port        int     `json:"port"`
				LbAlgo      string  `json:"lb_algo"`
				LbKind      string  `json:"lb_kind"`
				Persistence float64 `json:"persistence_timeout"`
				RealServers []struct {
					IP       string `json:"ip"`
					Checkers []struct {
						Type    string  `json:"type"`
						Timeout float64 `json:"connect_timeout"`
						Retry   int     `json:"retry"`
					} `json:"checker"`
				} `json:"real_server"`
			} `json:"virtual_server"`
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !doc.Valid || len(doc.Diagnostics) != len(diags) {
		t.Errorf("valid %v, %d diagnostics; want true, %d", doc.Valid, len(doc.Diagnostics), len(diags))
	}
	if len(doc.Config.Instances) != 1 {
		t.Fatalf("%d instances", len(doc.Config.Instances))
	}
	in := doc.Config.Instances[0]
	for k, want := range map[string]any{"name": "VI_1", "state": "BACKUP", "configured_state": "MASTER",
		"virtual_router_id": 51.0, "priority": 100.0, "advert_int": 1.0, "garp_master_delay": 5.0, "preempt": true} {
		if in[k] != want {
			t.Errorf("vrrp_instance.%s = %v, want %v", k, in[k], want)
		}
	}
	if vips, _ := in["virtual_ipaddress"].([]any); len(vips) != 1 || vips[0].(map[string]any)["address"] != "192.168.12.211/32" {
		t.Errorf("virtual_ipaddress = %v", in["virtual_ipaddress"])
	}
	if len(doc.Config.VS) != 1 || len(doc.Config.VS[0].RealServers) != 2 {
		t.Fatalf("virtual_server = %+v", doc.Config.VS)
	}
	vs := doc.Config.VS[0]
	if vs.IP != "192.168.12.211" || vs.Port != 80 || vs.LbAlgo != "wrr" || vs.LbKind != "DR" || vs.Persistence != 50 {
		t.Errorf("virtual_server = %+v", vs)
	}
	c := vs.RealServers[0].Checkers
	if len(c) != 1 || c[0].Type != "TCP_CHECK" || c[0].Timeout != 3 {
		t.Errorf("checker = %+v", c)
	}
}
