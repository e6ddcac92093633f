package maglev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func keys(n int, weight func(i int) uint32) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: fmt.Sprintf("10.%d.%d.%d:80", i>>16&0xff, i>>8&0xff, i&0xff), Weight: weight(i)}
	}
	return es
}

func counts(table []int32, n int) []int {
	c := make([]int, n)
	for _, v := range table {
		c[v]++
	}
	return c
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		size    uint32
		want    error
	}{
		{"size 0", nil, 0, ErrSizeNotPrime},
		{"size 1", nil, 1, ErrSizeNotPrime},
		{"size 65536", nil, 65536, ErrSizeNotPrime},
		{"size 65535", nil, 65535, ErrSizeNotPrime},
		{"square of prime", nil, 251 * 251, ErrSizeNotPrime},
		{"duplicate key", []Entry{{"a", 1}, {"b", 1}, {"a", 2}}, 7, ErrDuplicateKey},
		{"too many weighted", keys(8, func(int) uint32 { return 1 }), 7, ErrTooManyEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.entries, tt.size)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build: err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBuildSmallPrimesAccepted(t *testing.T) {
	for _, size := range []uint32{2, 3, 5, 7, 13, 251, 65521, DefaultSize, 4294967291} {
		if !isPrime(size) {
			t.Errorf("isPrime(%d) = false", size)
		}
	}
	// Building a 2^32-5 slot table would take 16 GiB; stop at size 65521.
	tab, err := Build([]Entry{{"a", 1}}, 65521)
	if err != nil || len(tab) != 65521 {
		t.Fatalf("Build(65521) = %d slots, %v", len(tab), err)
	}
}

func TestBuildEmpty(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"no entries", nil},
		{"all weight 0", []Entry{{"a", 0}, {"b", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Build(tt.entries, 13)
			if err != nil {
				t.Fatal(err)
			}
			if len(tab) != 13 {
				t.Fatalf("len = %d, want 13", len(tab))
			}
			for i, v := range tab {
				if v != -1 {
					t.Fatalf("slot %d = %d, want -1", i, v)
				}
			}
		})
	}
}

// TestBuildDistribution checks that every entry owns its weight's share of
// the slots to within ±1 % (or ±2 slots for shares under 200 slots: one
// turn of the last, partial round plus the leftover credit).
func TestBuildDistribution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"seed: two of weight 1", []Entry{{"192.168.28.103:80", 1}, {"192.168.28.104:80", 1}}},
		{"weights 1 2 3 4", []Entry{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}},
		{"one of weight 0", []Entry{{"a", 5}, {"b", 0}, {"c", 5}}},
		{"100 random 1..10", keys(100, func(int) uint32 { return 1 + r.Uint32N(10) })},
		{"1000 equal", keys(1000, func(int) uint32 { return 1 })},
		{"1 heavy 99 light", keys(100, func(i int) uint32 {
			if i == 0 {
				return 1000
			}
			return 10
		})},
		{"huge weights", []Entry{{"a", 1 << 31}, {"b", 1 << 30}, {"c", 4000000000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Build(tt.entries, DefaultSize)
			if err != nil {
				t.Fatal(err)
			}
			c := counts(tab, len(tt.entries))
			var sum float64
			for _, e := range tt.entries {
				sum += float64(e.Weight)
			}
			for i, e := range tt.entries {
				want := float64(DefaultSize) * float64(e.Weight) / sum
				diff := float64(c[i]) - want
				tol := max(2, want/100)
				if diff > tol || diff < -tol {
					t.Errorf("%s (weight %d): %d slots, want %.1f ±%.1f", e.Key, e.Weight, c[i], want, tol)
				}
			}
		})
	}
}

// flowHash is the stand-in flow hash of these tests: FNV-1a 64 over the
// 13-byte 5-tuple (src addr, dst addr, src port, dst port, protocol) in
// network byte order, reduced mod the table size. The dataplane uses its
// own hash; any hash that spreads flows uniformly gives the same split.
func flowHash(src, dst [4]byte, sport, dport uint16, proto uint8) uint64 {
	var b [13]byte
	copy(b[0:4], src[:])
	copy(b[4:8], dst[:])
	binary.BigEndian.PutUint16(b[8:10], sport)
	binary.BigEndian.PutUint16(b[10:12], dport)
	b[12] = proto
	return fnv1a(string(b[:]))
}

func TestFlowDistribution(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"seed: two of weight 1", []Entry{{"192.168.28.103:80", 1}, {"192.168.28.104:80", 1}}},
		{"weights 1 2 3 4", []Entry{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}},
		{"weights 1 3", []Entry{{"rs1", 1}, {"rs2", 3}}},
	}
	const flows = 100000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Build(tt.entries, DefaultSize)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, 4))
			c := make([]int, len(tt.entries))
			dst := [4]byte{192, 168, 12, 211}
			for range flows {
				var src [4]byte
				binary.BigEndian.PutUint32(src[:], r.Uint32())
				h := flowHash(src, dst, uint16(r.Uint32N(65536)), 80, 6)
				c[tab[h%uint64(len(tab))]]++
			}
			var sum float64
			for _, e := range tt.entries {
				sum += float64(e.Weight)
			}
			for i, e := range tt.entries {
				want := flows * float64(e.Weight) / sum
				if d := (float64(c[i]) - want) / want; d > 0.05 || d < -0.05 {
					t.Errorf("%s: %d flows, want %.0f ±5%%", e.Key, c[i], want)
				}
			}
		})
	}
}

func TestBuildOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	base := keys(50, func(int) uint32 { return 1 + r.Uint32N(5) })
	want, err := Build(base, DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	for perm := range 5 {
		shuffled := append([]Entry(nil), base...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, err := Build(shuffled, DefaultSize)
		if err != nil {
			t.Fatal(err)
		}
		for s := range got {
			if shuffled[got[s]].Key != base[want[s]].Key {
				t.Fatalf("permutation %d: slot %d owned by %s, want %s", perm, s, shuffled[got[s]].Key, base[want[s]].Key)
			}
		}
	}
}

// moved is the fraction of slots whose owner key differs between a and b.
func moved(a []int32, ea []Entry, b []int32, eb []Entry) float64 {
	n := 0
	for i := range a {
		if ea[a[i]].Key != eb[b[i]].Key {
			n++
		}
	}
	return float64(n) / float64(len(a))
}

// TestMinimalDisruption removes and adds one entry of N and measures the
// fraction of slots that change owner. The ideal is 1/N (the removed or
// added entry's own share); Maglev trades a little more than that for an
// even spread, and the excess grows as size/N shrinks (paper §3.4 and its
// resilience evaluation: a larger table moves fewer slots). Asserted: at
// most 2/N while size ≥ 600·N (measured ≈ 1.6/N at N=100); at N=655 and
// N=1000 (size/N = 100 and 65) at most 1 % of the table (measured ≈ 0.9 %
// and 0.7 %, i.e. 6–7/N). Measured values are logged.
func TestMinimalDisruption(t *testing.T) {
	for _, tc := range []struct {
		n     int
		bound float64
	}{{10, 2.0 / 10}, {100, 2.0 / 100}, {655, 0.01}, {1000, 0.01}} {
		n := tc.n
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			all := keys(n+1, func(int) uint32 { return 1 })
			base := all[:n]
			tab, err := Build(base, DefaultSize)
			if err != nil {
				t.Fatal(err)
			}
			// Remove entry n/2.
			removed := append(append([]Entry(nil), base[:n/2]...), base[n/2+1:]...)
			tr, err := Build(removed, DefaultSize)
			if err != nil {
				t.Fatal(err)
			}
			// Add entry n.
			tab2, err := Build(all, DefaultSize)
			if err != nil {
				t.Fatal(err)
			}
			ideal := 1 / float64(n)
			for _, c := range []struct {
				what string
				frac float64
			}{
				{"remove", moved(tab, base, tr, removed)},
				{"add", moved(tab, base, tab2, all)},
			} {
				t.Logf("N=%d %s one: %.4f of slots moved (ideal %.4f, ratio %.2f)", n, c.what, c.frac, ideal, c.frac/ideal)
				if c.frac < ideal*0.9 || c.frac > tc.bound {
					t.Errorf("%s one of %d: %.4f of slots moved, want between %.4f and %.4f", c.what, n, c.frac, ideal*0.9, tc.bound)
				}
			}
		})
	}
}

// TestWeightZeroLikeRemoval: an entry with weight 0 is the same as no entry.
func TestWeightZeroLikeRemoval(t *testing.T) {
	a := []Entry{{"a", 1}, {"b", 2}, {"c", 3}}
	b := []Entry{{"a", 1}, {"b", 0}, {"c", 3}}
	c := []Entry{{"a", 1}, {"c", 3}}
	tb, err := Build(b, 251)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := Build(c, 251)
	if err != nil {
		t.Fatal(err)
	}
	if f := moved(tb, b, tc, c); f != 0 {
		t.Fatalf("weight 0 differs from removal in %.3f of slots", f)
	}
	ta, _ := Build(a, 251)
	if f := moved(ta, a, tb, b); f == 0 {
		t.Fatal("setting b's weight to 0 moved no slot")
	}
}

func FuzzBuild(f *testing.F) {
	f.Add("a", uint32(1), "b", uint32(2), "c", uint32(0), uint16(13))
	f.Add("x", uint32(0), "y", uint32(0), "z", uint32(0), uint16(7))
	f.Fuzz(func(t *testing.T, k1 string, w1 uint32, k2 string, w2 uint32, k3 string, w3 uint32, size uint16) {
		es := []Entry{{k1, w1}, {k2, w2}, {k3, w3}}
		tab, err := Build(es, uint32(size))
		if err != nil {
			return
		}
		if len(tab) != int(size) {
			t.Fatalf("len = %d, want %d", len(tab), size)
		}
		anyWeight := w1 > 0 || w2 > 0 || w3 > 0
		for _, v := range tab {
			if !anyWeight {
				if v != -1 {
					t.Fatalf("slot = %d with no weight", v)
				}
				continue
			}
			if v < 0 || int(v) >= len(es) || es[v].Weight == 0 {
				t.Fatalf("slot owner %d invalid", v)
			}
		}
	})
}

func benchmarkBuild(b *testing.B, n int) {
	es := keys(n, func(i int) uint32 { return uint32(1 + i%7) })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(es, DefaultSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild2(b *testing.B)    { benchmarkBuild(b, 2) }
func BenchmarkBuild100(b *testing.B)  { benchmarkBuild(b, 100) }
func BenchmarkBuild1000(b *testing.B) { benchmarkBuild(b, 1000) }
