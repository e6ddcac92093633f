package maglev

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// paperBuild is the unweighted population of the Maglev paper written as
// its pseudo-code reads: a full permutation array per entry, computed up
// front. It is the oracle for equal weights and the benchmark baseline.
func paperBuild(entries []Entry, size uint32) []int32 {
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(entries[a].Key, entries[b].Key) })
	m := uint64(size)
	perm := make([][]uint32, len(order))
	for k, i := range order {
		h := fnv1a(entries[i].Key)
		offset, skip := mix(h^offsetSeed)%m, mix(h^skipSeed)%(m-1)+1
		perm[k] = make([]uint32, m)
		for j := range m {
			perm[k][j] = uint32((offset + j*skip) % m)
		}
	}
	table := make([]int32, size)
	for i := range table {
		table[i] = -1
	}
	next := make([]uint64, len(order))
	n := uint64(0)
	for {
		for k, i := range order {
			c := perm[k][next[k]]
			for table[c] >= 0 {
				next[k]++
				c = perm[k][next[k]]
			}
			table[c] = int32(i)
			next[k]++
			n++
			if n == m {
				return table
			}
		}
	}
}

func TestEqualWeightsMatchPaper(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		n      int
		weight uint32
		size   uint32
	}{{1, 1, 7}, {2, 1, 251}, {3, 5, 251}, {50, 1, 65521}, {200, 3, DefaultSize}} {
		es := keys(tc.n, func(int) uint32 { return tc.weight })
		r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		got, err := Build(es, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		want := paperBuild(es, tc.size)
		if !slices.Equal(got, want) {
			t.Errorf("n=%d weight=%d size=%d: table differs from the paper's population", tc.n, tc.weight, tc.size)
		}
	}
}

func benchmarkPaper(b *testing.B, n int) {
	es := keys(n, func(int) uint32 { return 1 })
	b.ReportAllocs()
	for b.Loop() {
		paperBuild(es, DefaultSize)
	}
}

// Baselines: the paper's pseudo-code with precomputed permutations
// (unweighted). Compare BenchmarkBuildN against BenchmarkPaperBuildN.
func BenchmarkPaperBuild2(b *testing.B)    { benchmarkPaper(b, 2) }
func BenchmarkPaperBuild100(b *testing.B)  { benchmarkPaper(b, 100) }
func BenchmarkPaperBuild1000(b *testing.B) { benchmarkPaper(b, 1000) }
