package dataplane

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// MinKernel is the oldest Linux release the XDP program loads on: the
// newest feature it needs, bpf_xdp_load_bytes, came in 5.18. It is
// verified on Debian 12's 6.1 (tests/bpf_vm_test.go, in a qemu guest) and
// on the build host's kernel. Below it, the daemon runs without XDP
// (kernel IPVS or raw sockets).
const MinKernel = "5.18"

// ErrUnsupportedKernel is wrapped when the running kernel lacks a feature
// the program needs.
var ErrUnsupportedKernel = errors.New("dataplane: kernel too old for the XDP program")

// kernelRequirements are what the program needs from the kernel, with the
// Linux release that brought each (bpf_link XDP attachment, 5.9, comes
// with them: cilium/ebpf has no probe for it).
var kernelRequirements = []struct {
	what, since string
	probe       func() error
}{
	{"XDP programs", "4.8", func() error { return features.HaveProgramType(ebpf.XDP) }},
	{"LRU hash maps", "4.10", func() error { return features.HaveMapType(ebpf.LRUHash) }},
	{"array-of-maps", "4.12", func() error { return features.HaveMapType(ebpf.ArrayOfMaps) }},
	{"BPF ring buffers", "5.8", func() error { return features.HaveMapType(ebpf.RingBuf) }},
	{"bpf_ktime_get_coarse_ns", "5.11", func() error { return features.HaveProgramHelper(ebpf.XDP, asm.FnKtimeGetCoarseNs) }},
	{"bpf_xdp_load_bytes", "5.18", func() error { return features.HaveProgramHelper(ebpf.XDP, asm.FnXdpLoadBytes) }},
}

// missingKernelFeatures lists the requirements this kernel lacks, each
// with the release that brought it.
func missingKernelFeatures() []string {
	var out []string
	for _, r := range kernelRequirements {
		if err := r.probe(); errors.Is(err, ebpf.ErrNotSupported) {
			out = append(out, fmt.Sprintf("%s (Linux %s)", r.what, r.since))
		}
	}
	return out
}

// unsupportedKernel explains a failed load by the features the kernel
// lacks; nil when it lacks none (the load failed for another reason).
func unsupportedKernel(loadErr error) error {
	miss := missingKernelFeatures()
	if len(miss) == 0 {
		return nil
	}
	first, _, _ := strings.Cut(loadErr.Error(), "\n")
	return fmt.Errorf("%w: it lacks %s; the program needs Linux %s or later (%s)",
		ErrUnsupportedKernel, strings.Join(miss, ", "), MinKernel, first)
}
