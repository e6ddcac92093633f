package main

import (
	"reflect"
	"testing"
)

func TestKeepalivedArgs(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		cmd     string
		out     []string
		wantErr bool
	}{
		{[]string{"-t", "-f", "/etc/k.conf"}, "check-config", []string{"-f", "/etc/k.conf"}, false},
		{[]string{"--config-test", "--use-file=/etc/k.conf"}, "check-config", []string{"-f", "/etc/k.conf"}, false},
		{[]string{"-tf", "/etc/k.conf"}, "check-config", []string{"-f", "/etc/k.conf"}, false},
		{[]string{"-t", "-f/etc/k.conf", "-i", "lb1"}, "check-config", []string{"-f", "/etc/k.conf", "-i", "lb1"}, false},
		{[]string{"-t", "-l", "-D", "-n"}, "check-config", nil, false},
		{[]string{"-t"}, "check-config", nil, false},
		{[]string{"-t", "-f"}, "", nil, true},
		{[]string{"--config-test=/tmp/log"}, "", nil, true},
		{[]string{"-t", "--snmp"}, "", nil, true},
		{[]string{"-v"}, "version", nil, false},
		{[]string{"--version"}, "version", nil, false},
		{[]string{"-f", "/etc/k.conf", "-n", "-l", "-D"}, "run", []string{"-f", "/etc/k.conf", "-n", "-l", "-D"}, false},
		{[]string{"-nlD"}, "run", []string{"-nlD"}, false},
	} {
		cmd, out, err := keepalivedArgs(tc.in)
		if (err != nil) != tc.wantErr || cmd != tc.cmd || !reflect.DeepEqual(out, tc.out) {
			t.Errorf("%q: got %q %q %v; want %q %q err=%v", tc.in, cmd, out, err, tc.cmd, tc.out, tc.wantErr)
		}
	}
}
