// Package xdpvip is the module root; gen.go holds the code generation steps.
// Run `make generate` (needs clang) to rebuild the BPF objects in
// pkg/dataplane from the C sources in bpf/.
package xdpvip
