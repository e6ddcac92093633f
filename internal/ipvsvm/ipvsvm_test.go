package ipvsvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeBzImage builds a minimal bzImage header around payload.
func fakeBzImage(setupSects byte, version uint16, payload []byte) []byte {
	setup := int(setupSects)
	if setup == 0 {
		setup = 4
	}
	pm := (setup + 1) * 512
	b := make([]byte, pm+16+len(payload))
	b[offSetupSects] = setupSects
	copy(b[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(b[offVersion:], version)
	binary.LittleEndian.PutUint32(b[offPayloadOffset:], 16)
	binary.LittleEndian.PutUint32(b[offPayloadLength:], uint32(len(payload)))
	copy(b[pm+16:], payload)
	return b
}

func TestParseBzImage(t *testing.T) {
	xz := append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, 1, 2, 3)
	tests := []struct {
		name string
		in   []byte
		want Payload
		err  bool
	}{
		{"xz", fakeBzImage(39, 0x020f, xz), Payload{Offset: 40*512 + 16, Length: len(xz), Compression: "xz"}, false},
		{"gzip, setup_sects 0 means 4", fakeBzImage(0, 0x0208, []byte{0x1f, 0x8b, 8}), Payload{Offset: 5*512 + 16, Length: 3, Compression: "gzip"}, false},
		{"short", make([]byte, 100), Payload{}, true},
		{"no magic", make([]byte, 4096), Payload{}, true},
		{"old protocol", fakeBzImage(4, 0x0206, xz), Payload{}, true},
		{"unknown compression", fakeBzImage(4, 0x020f, []byte{1, 2, 3, 4}), Payload{}, true},
	}
	for _, tt := range tests {
		got, err := ParseBzImage(tt.in)
		if tt.err {
			if !errors.Is(err, ErrNotBzImage) {
				t.Errorf("%s: error %v; want ErrNotBzImage", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	// A payload longer than the file.
	b := fakeBzImage(4, 0x020f, xz)
	binary.LittleEndian.PutUint32(b[offPayloadLength:], 1<<30)
	if _, err := ParseBzImage(b); !errors.Is(err, ErrNotBzImage) {
		t.Errorf("oversized payload: error %v", err)
	}
}

func FuzzParseBzImage(f *testing.F) {
	f.Add(fakeBzImage(39, 0x020f, []byte{0xfd, '7', 'z', 'X', 'Z', 0}))
	f.Add(make([]byte, headerEnd))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseBzImage(b)
		if err != nil {
			if !errors.Is(err, ErrNotBzImage) {
				t.Fatalf("error %v does not wrap ErrNotBzImage", err)
			}
			return
		}
		if p.Offset < 0 || p.Length <= 0 || p.Offset+p.Length > len(b) || decompressors[p.Compression] == nil {
			t.Fatalf("bad payload %+v for %d bytes", p, len(b))
		}
	})
}

func TestParseModInfo(t *testing.T) {
	sec := []byte("license=GPL\x00depends=nf_conntrack,libcrc32c,nf_defrag-ipv6\x00softdep=pre: crc32c post: foo\x00\x00name=ip_vs\x00")
	got := ParseModInfo(sec)
	if want := []string{"nf_conntrack", "libcrc32c", "nf_defrag_ipv6"}; !slices.Equal(got.Depends, want) {
		t.Errorf("Depends = %q; want %q", got.Depends, want)
	}
	if want := []string{"crc32c"}; !slices.Equal(got.SoftPre, want) {
		t.Errorf("SoftPre = %q; want %q", got.SoftPre, want)
	}
	if got := ParseModInfo([]byte("depends=\x00")); len(got.Depends) != 0 {
		t.Errorf("empty depends = %q", got.Depends)
	}
}

func FuzzParseModInfo(f *testing.F) {
	f.Add([]byte("depends=a,b\x00softdep=pre: c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mi := ParseModInfo(b)
		for _, n := range append(mi.Depends, mi.SoftPre...) {
			if n == "" || strings.Contains(n, "-") {
				t.Fatalf("bad module name %q", n)
			}
		}
	})
}

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffc)
	libpopt.so.0 => /lib/x86_64-linux-gnu/libpopt.so.0 (0x00007f0c)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0c)
`
	got, err := ParseLdd(out)
	want := []string{"/lib/x86_64-linux-gnu/libpopt.so.0", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseLdd = %q, %v; want %q", got, err, want)
	}
	if _, err := ParseLdd("\tlibfoo.so.1 => not found\n"); err == nil {
		t.Error("a missing library is not an error")
	}
}

func FuzzParseLdd(f *testing.F) {
	f.Add("libc.so.6 => /lib/libc.so.6 (0x1)\n/lib64/ld.so (0x2)\n")
	f.Fuzz(func(t *testing.T, s string) {
		libs, err := ParseLdd(s)
		if err != nil {
			return
		}
		for _, l := range libs {
			if !strings.HasPrefix(l, "/") {
				t.Fatalf("relative library %q", l)
			}
		}
	})
}

func TestParseAptDepends(t *testing.T) {
	got, err := ParseAptDepends("linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n")
	if err != nil || got != "linux-image-6.1.0-56-amd64" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := ParseAptDepends("linux-image-amd64\n"); err == nil {
		t.Error("no Depends line is not an error")
	}
}

func FuzzParseAptDepends(f *testing.F) {
	f.Add("  Depends: linux-image-6.1.0-56-amd64\n")
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParseAptDepends(s); err == nil && (!strings.HasPrefix(p, "linux-image-") || p == MetaPackage) {
			t.Fatalf("bad package %q", p)
		}
	})
}

func TestParseResultLine(t *testing.T) {
	tests := []struct {
		line string
		code int
		ok   bool
	}{
		{"XDPVIP-IPVSVM-RESULT: exit=0", 0, true},
		{"[    1.2] noise XDPVIP-IPVSVM-RESULT: exit=125\r", 125, true},
		{"XDPVIP-IPVSVM-RESULT: exit=", 0, false},
		{"XDPVIP-IPVSVM-RESULT: exit=300", 0, false},
		{"exit=0", 0, false},
	}
	for _, tt := range tests {
		code, ok := ParseResultLine(tt.line)
		if code != tt.code || ok != tt.ok {
			t.Errorf("ParseResultLine(%q) = %d, %v; want %d, %v", tt.line, code, ok, tt.code, tt.ok)
		}
	}
}

func FuzzParseResultLine(f *testing.F) {
	f.Add("XDPVIP-IPVSVM-RESULT: exit=3")
	f.Fuzz(func(t *testing.T, s string) {
		if code, ok := ParseResultLine(s); ok && (code < 0 || code > 255) {
			t.Fatalf("code %d out of range", code)
		}
	})
}

// TestCPIOWriter checks the archive with the system's cpio, which must
// list every entry, parents first.
func TestCPIOWriter(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed (tools/deps.sh installs it)")
	}
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	if err := w.File("/etc/ipvsvm/run.sh", 0o755, []byte("echo hi\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Symlink("/bin/sh", "busybox"); err != nil {
		t.Fatal(err)
	}
	if err := w.Dir("/etc", 0o755); err != nil { // already there: no second entry
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, out)
	}
	want := []string{"etc", "etc/ipvsvm", "etc/ipvsvm/run.sh", "bin", "bin/sh"}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		t.Errorf("cpio -t = %q; want %q", got, want)
	}
}

// TestNewestCachedKeepsToItsMetaPackage checks the offline fallback picks
// a kernel fetched for the same meta package: 6.12 sorts after 6.1 but is
// not linux-image-amd64's kernel.
func TestNewestCachedKeepsToItsMetaPackage(t *testing.T) {
	dir := t.TempDir()
	mk := func(pkg, release, meta string) {
		d := filepath.Join(dir, pkg)
		if err := os.MkdirAll(filepath.Join(d, "root", "lib", "modules", release), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string]string{"vmlinux": "", "ready": release + "\n"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if meta != "" {
			if err := os.WriteFile(filepath.Join(d, metaFile), []byte(meta+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("linux-image-6.1.0-56-amd64", "6.1.0-56-amd64", "") // cached before meta files
	mk("linux-image-6.1.0-57-amd64", "6.1.0-57-amd64", MetaPackage)
	mk("linux-image-6.12.117+deb12-amd64", "6.12.117+deb12-amd64", "linux-image-6.12-amd64")
	for meta, want := range map[string]string{MetaPackage: "6.1.0-57-amd64", "linux-image-6.12-amd64": "6.12.117+deb12-amd64"} {
		k, err := newestCached(dir, meta)
		if err != nil || k.Release != want {
			t.Errorf("newestCached(%s) = %+v, %v; want release %s", meta, k, err, want)
		}
	}
	if _, err := newestCached(dir, "linux-image-cloud-amd64"); err == nil {
		t.Error("newestCached found a kernel for a meta package never fetched")
	}
}
