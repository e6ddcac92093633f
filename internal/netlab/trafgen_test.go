package netlab

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTrafgenSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want uint64
		err  error
	}{
		{"summary", "     64 packets to schedule\n  3840 bytes in total\nRunning! Hang up with ^C!\n\n     2227968 packets outgoing\n   102486528 bytes outgoing\n", 2227968, nil},
		{"zero", "     0 packets outgoing\n", 0, nil},
		{"interrupted before the summary", "Running! Hang up with ^C!\n", 0, ErrNoTrafgenTotal},
		{"schedule line is not the total", "     64 packets to schedule\n", 0, ErrNoTrafgenTotal},
		{"empty", "", 0, ErrNoTrafgenTotal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTrafgenSent(tc.out)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("ParseTrafgenSent = %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestTrafgenConfig(t *testing.T) {
	got := TrafgenConfig([][]byte{{0x01, 0xab}, {0xff}})
	want := "{ 0x01, 0xab }\n{ 0xff }\n"
	if got != want {
		t.Errorf("TrafgenConfig = %q, want %q", got, want)
	}
}

func FuzzParseTrafgenSent(f *testing.F) {
	f.Add("     2227968 packets outgoing\n")
	f.Add("Running! Hang up with ^C!\n")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseTrafgenSent(s)
		if err == nil && !strings.Contains(s, "packets outgoing") {
			t.Errorf("parsed %d from text without a total: %q", n, s)
		}
	})
}
