package ipvsvm

import (
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// DefaultModules are loaded at boot, with their dependencies: IPVS, every
// scheduler keepalived's lb_algo can name, and what the in-guest networks
// are built from.
var DefaultModules = []string{
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_sh", "ip_vs_dh", "ip_vs_mh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf",
	"veth", "bridge",
}

// TunnelModules are what TUN real servers in a guest decapsulate with
// (added to DefaultModules by the tests that need them): IP-in-IP
// (tunl0), IPv6 tunnels (ip6tnl0: ip6ip6 and ipip6) and FOU/GUE for
// IPv4 and IPv6, with what they build on.
var TunnelModules = []string{
	"tunnel4", "ip_tunnel", "ipip", "tunnel6", "ip6_tunnel",
	"udp_tunnel", "ip6_udp_tunnel", "fou", "fou6",
}

// DefaultHostBinaries are host programs copied into the guest with their
// shared libraries: iproute2's ip (busybox's applet has no netns support)
// and ipvsadm. Each goes to the same path in the guest.
var DefaultHostBinaries = []string{"/usr/sbin/ip", "/usr/sbin/ipvsadm"}

// BusyboxPath is Debian busybox-static's binary.
const BusyboxPath = "/bin/busybox"

// File is one file to put in the initramfs, from a host path or from
// Data.
type File struct {
	Src  string // host path; empty when Data is set
	Data []byte
	Dst  string // absolute path in the guest
	Mode fs.FileMode
}

// Image describes an initramfs.
type Image struct {
	Kernel       *Kernel
	Modules      []string // loaded at boot in dependency order
	HostBinaries []string // dynamically linked host programs, with their libraries
	Files        []File   // anything else: test binaries, configs
	// Command is run by /bin/sh once the modules are loaded, as the child
	// of PID 1; its exit status is the guest's result.
	Command string
}

// Guest paths of the files init reads.
const (
	guestModulesList = "/etc/ipvsvm/modules"
	guestCommand     = "/etc/ipvsvm/run.sh"
)

// Console markers init prints; Boot looks for them.
const (
	StartMarker  = "XDPVIP-IPVSVM: START"
	ResultMarker = "XDPVIP-IPVSVM-RESULT: exit="
)

// initScript is PID 1. It mounts the pseudo filesystems, loads the modules
// and runs the command, then prints the result marker and powers off. A
// module that fails to load makes the result 125.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TMPDIR=/tmp
mkdir -p /proc /sys /dev /run /tmp /root /var
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ln -s /run /var/run
modfail=0
for m in $(cat ` + guestModulesList + `); do
	insmod /lib/modules/$m.ko || { echo "xdpvip-ipvsvm: insmod $m failed"; modfail=1; }
done
ip link set lo up
echo "` + StartMarker + `"
if [ $modfail = 0 ]; then
	/bin/sh ` + guestCommand + ` </dev/null
	rc=$?
else
	rc=125
fi
echo "` + ResultMarker + `$rc"
sync
poweroff -f
`

// BuildInitramfs writes a gzipped newc initramfs for img to out.
func BuildInitramfs(img Image, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	cw := NewCPIOWriter(zw)
	if err := writeImage(cw, img); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func writeImage(cw *CPIOWriter, img Image) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc/ipvsvm", "lib/modules", "proc", "sys", "dev", "run", "tmp", "root"} {
		if err := cw.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := addHostFile(cw, BusyboxPath, "/bin/busybox"); err != nil {
		return fmt.Errorf("ipvsvm: %w (install busybox-static)", err)
	}
	if err := cw.File("init", 0o755, []byte(initScript)); err != nil {
		return err
	}
	// busybox sh runs its own applets before searching PATH; functions
	// come first, so the host programs win over applets of the same name.
	var script strings.Builder
	for _, bin := range img.HostBinaries {
		fmt.Fprintf(&script, "%s() { %s \"$@\"; }\n", path.Base(bin), bin)
	}
	script.WriteString(img.Command + "\n")
	if err := cw.File(guestCommand, 0o755, []byte(script.String())); err != nil {
		return err
	}

	libs := map[string]bool{}
	for _, bin := range img.HostBinaries {
		if err := addHostFile(cw, bin, bin); err != nil {
			return err
		}
		ls, err := SharedLibs(bin)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if libs[l] {
				continue
			}
			libs[l] = true
			if err := addHostFile(cw, l, l); err != nil {
				return err
			}
		}
	}

	if img.Kernel != nil && len(img.Modules) > 0 {
		tree, err := OpenModuleTree(img.Kernel.ModulesDir)
		if err != nil {
			return err
		}
		order, err := tree.LoadOrder(img.Modules...)
		if err != nil {
			return err
		}
		for _, m := range order {
			b, err := tree.Read(m)
			if err != nil {
				return err
			}
			if err := cw.File("/lib/modules/"+m+".ko", 0o644, b); err != nil {
				return err
			}
		}
		if err := cw.File(guestModulesList, 0o644, []byte(strings.Join(order, "\n")+"\n")); err != nil {
			return err
		}
	} else if err := cw.File(guestModulesList, 0o644, nil); err != nil {
		return err
	}

	for _, f := range img.Files {
		if !path.IsAbs(f.Dst) {
			return fmt.Errorf("ipvsvm: guest path %q is not absolute", f.Dst)
		}
		data := f.Data
		mode := f.Mode
		if f.Src != "" {
			b, err := os.ReadFile(f.Src)
			if err != nil {
				return err
			}
			data = b
			if mode == 0 {
				if st, err := os.Stat(f.Src); err == nil {
					mode = st.Mode().Perm()
				}
			}
		}
		if mode == 0 {
			mode = 0o644
		}
		if err := cw.File(f.Dst, mode, data); err != nil {
			return err
		}
	}
	return nil
}

// addHostFile copies a host file; a symlinked path (as /lib64/ld-linux-*)
// is copied as the file it points to.
func addHostFile(cw *CPIOWriter, src, dst string) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(real)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(real)
	if err != nil {
		return err
	}
	return cw.File(dst, st.Mode().Perm(), b)
}

// BuildStaticTest compiles a package's tests into one statically linked
// binary (CGO_ENABLED=0 go test -c) for the guest.
func BuildStaticTest(pkgDir, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("ipvsvm: %w", err)
	}
	cmd := exec.Command(goBin, "test", "-c", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ipvsvm: go test -c in %s: %w: %s", pkgDir, err, b)
	}
	return nil
}
