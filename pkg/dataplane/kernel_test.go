package dataplane

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestKernelHasWhatTheProgramNeeds runs every feature probe: on a kernel
// the program loads on (this host, the 6.1 guest) none may be missing.
func TestKernelHasWhatTheProgramNeeds(t *testing.T) {
	requireBPF(t)
	if miss := missingKernelFeatures(); len(miss) > 0 {
		t.Fatalf("the kernel lacks %v", miss)
	}
	if err := unsupportedKernel(errors.New("load failed")); err != nil {
		t.Errorf("unsupportedKernel = %v on a kernel with every feature", err)
	}
}

// TestMinKernelIsTheNewestRequirement keeps MinKernel in step with the
// requirement list.
func TestMinKernelIsTheNewestRequirement(t *testing.T) {
	newest := ""
	for _, r := range kernelRequirements {
		if newest == "" || releaseLess(newest, r.since) {
			newest = r.since
		}
	}
	if newest != MinKernel {
		t.Errorf("MinKernel %s, newest requirement %s", MinKernel, newest)
	}
}

func releaseLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
