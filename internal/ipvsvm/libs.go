package ipvsvm

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
)

// ParseLdd returns the absolute paths of the shared objects in ldd's
// output, including the dynamic loader, in order of appearance. Lines
// without a file (linux-vdso, statically linked) are skipped:
//
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f...)
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)
//	linux-vdso.so.1 (0x00007f...)
func ParseLdd(out string) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ipvsvm: ldd: %s", line)
		}
		if _, after, ok := strings.Cut(line, "=>"); ok {
			line = strings.TrimSpace(after)
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "/") {
			continue
		}
		libs = append(libs, f[0])
	}
	return libs, sc.Err()
}

// SharedLibs runs ldd on a host binary and returns the libraries it needs
// (none for a static binary).
func SharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ipvsvm: ldd %s: %v: %s", bin, err, out)
	}
	return ParseLdd(string(out))
}
