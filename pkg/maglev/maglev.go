// Package maglev builds weighted Maglev lookup tables (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
// §3.4) for the XDP dataplane: table[hash(flow) % size] is the index of the
// real server that gets a new flow.
//
// Every entry has a preference list, the permutation
//
//	permutation[j] = (offset + j*skip) mod size
//	offset = h1(key) mod size
//	skip   = h2(key) mod (size-1) + 1
//
// which visits every slot exactly once because size is prime. Entries take
// turns claiming the next free slot of their list until the table is full.
// Weights are honoured by giving each entry turns in proportion to its
// weight (a credit counter per entry: every round each entry earns its
// weight and spends maxWeight per turn), so slot counts are proportional to
// the weights to within one slot per round boundary.
//
// The hashes are fixed (FNV-1a 64 of the key, finalised with two different
// SplitMix64 constants), entries are processed in key order and the result
// depends only on the multiset of (key, weight) pairs: two nodes with the
// same configuration and health build the same table.
package maglev

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultSize is the table size used when the configuration names none:
// a prime well above 100 × the largest expected number of real servers.
const DefaultSize uint32 = 65537

// Sentinel errors, wrapped with details by Build.
var (
	ErrSizeNotPrime   = errors.New("maglev: table size is not prime")
	ErrDuplicateKey   = errors.New("maglev: duplicate entry key")
	ErrTooManyEntries = errors.New("maglev: more weighted entries than table slots")
)

// Entry is one candidate for the table: Key identifies it stably across
// nodes and restarts (for example "10.0.0.3:80"); Weight 0 gives it no slots.
type Entry struct {
	Key    string
	Weight uint32
}

// Build returns a table of size slots, each the index into entries of the
// entry that owns the slot, or all -1 when no entry has a weight above 0.
// size must be prime. The input slice is not modified, and its order does
// not change which key owns which slot.
func Build(entries []Entry, size uint32) ([]int32, error) {
	if !isPrime(size) {
		return nil, fmt.Errorf("%w: %d", ErrSizeNotPrime, size)
	}
	// Order by key so the caller's order does not matter.
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(entries[a].Key, entries[b].Key) })
	for i := 1; i < len(order); i++ {
		if entries[order[i]].Key == entries[order[i-1]].Key {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateKey, entries[order[i]].Key)
		}
	}

	// Only weighted entries take part.
	type cursor struct {
		index  int32  // into the caller's entries
		weight uint64 // credit earned per round
		credit uint64
		pos    uint64 // next slot of the permutation to try
		skip   uint64
	}
	m := uint64(size)
	cursors := make([]cursor, 0, len(entries))
	var maxWeight uint64
	for _, i := range order {
		e := entries[i]
		if e.Weight == 0 {
			continue
		}
		h := fnv1a(e.Key)
		cursors = append(cursors, cursor{
			index:  int32(i),
			weight: uint64(e.Weight),
			pos:    mix(h^offsetSeed) % m,
			skip:   mix(h^skipSeed)%(m-1) + 1,
		})
		maxWeight = max(maxWeight, uint64(e.Weight))
	}
	if uint64(len(cursors)) > m {
		return nil, fmt.Errorf("%w: %d entries, %d slots", ErrTooManyEntries, len(cursors), size)
	}

	table := make([]int32, size)
	for i := range table {
		table[i] = -1
	}
	if len(cursors) == 0 {
		return table, nil
	}
	filled := uint64(0)
	for {
		for k := range cursors {
			c := &cursors[k]
			c.credit += c.weight
			for c.credit >= maxWeight {
				c.credit -= maxWeight
				// Claim the next slot of this entry's permutation that is
				// still free. The permutation visits every slot, so this
				// terminates while the table has a free slot.
				for table[c.pos] >= 0 {
					c.pos += c.skip
					if c.pos >= m {
						c.pos -= m
					}
				}
				table[c.pos] = c.index
				filled++
				if filled == m {
					return table, nil
				}
			}
		}
	}
}

// Seeds that derive the two Maglev hashes from one FNV-1a value.
const (
	offsetSeed uint64 = 0x9e3779b97f4a7c15
	skipSeed   uint64 = 0xc2b2ae3d27d4eb4f
)

// fnv1a is the 64-bit FNV-1a hash of s (the same as hash/fnv's New64a,
// inlined to avoid an allocation per key).
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is the SplitMix64 finaliser: it spreads FNV's weak low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// isPrime reports whether n is prime, by trial division (n < 2^32, so at
// most 2^16 divisions).
func isPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := uint64(3); d*d <= uint64(n); d += 2 {
		if uint64(n)%d == 0 {
			return false
		}
	}
	return true
}
