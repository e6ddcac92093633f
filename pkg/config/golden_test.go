package config

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// dumpModel writes every non-zero field of v as "path = value", one per
// line, in field order: a stable text form of the model for golden files.
func dumpModel(b *bytes.Buffer, path string, v reflect.Value) {
	switch x := v.Interface().(type) {
	case time.Duration:
		fmt.Fprintf(b, "%s = %s\n", path, x)
		return
	case netip.Addr:
		fmt.Fprintf(b, "%s = %s\n", path, x)
		return
	case netip.Prefix:
		fmt.Fprintf(b, "%s = %s\n", path, x)
		return
	case net.HardwareAddr:
		fmt.Fprintf(b, "%s = %s\n", path, x)
		return
	case Pos:
		fmt.Fprintf(b, "%s = %s:%d\n", path, filepath.ToSlash(x.File), x.Line)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			dumpModel(b, path, v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.IsZero() {
				continue
			}
			dumpModel(b, path+"."+v.Type().Field(i).Name, f)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			fmt.Fprintf(b, "%s = %x\n", path, v.Bytes())
			return
		}
		for i := 0; i < v.Len(); i++ {
			dumpModel(b, fmt.Sprintf("%s[%d]", path, i), v.Index(i))
		}
	case reflect.String:
		fmt.Fprintf(b, "%s = %q\n", path, v.String())
	default:
		fmt.Fprintf(b, "%s = %v\n", path, v.Interface())
	}
}

func TestGolden(t *testing.T) {
	confs, err := filepath.Glob("testdata/*.conf")
	if err != nil || len(confs) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, conf := range confs {
		t.Run(filepath.Base(conf), func(t *testing.T) {
			cfg, diags, err := LoadWith(conf, Options{ConfigID: "golden"})
			var b bytes.Buffer
			fmt.Fprintf(&b, "# err: %v\n", err != nil)
			for _, d := range diags {
				fmt.Fprintf(&b, "# %s: %s\n", d.Severity, d)
			}
			dumpModel(&b, "Config", reflect.ValueOf(cfg))
			golden := strings.TrimSuffix(conf, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from the model; diff with -update and review:\n%s", golden, firstDiff(string(want), b.String()))
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %s\ngot  %s", i+1, wl, gl)
		}
	}
	return ""
}
