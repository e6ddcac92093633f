package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// JSON is the whole parsed model and the diagnostics as one JSON document,
// with keepalived's keyword names: what `xdpvip check-config --json`
// prints so an operator can see what xdpvip understood. Times are seconds
// (a number with up to six decimals, keepalived's resolution), addresses
// strings, positions "file:line".
func JSON(c *Config, diags []Diagnostic) ([]byte, error) {
	type diag struct {
		Pos      string `json:"pos"`
		Keyword  string `json:"keyword"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
	}
	out := struct {
		Valid       bool            `json:"valid"`
		Diagnostics []diag          `json:"diagnostics"`
		Config      json.RawMessage `json:"config"`
	}{Valid: true, Diagnostics: []diag{}}
	for _, d := range diags {
		if d.Severity == Error {
			out.Valid = false
		}
		out.Diagnostics = append(out.Diagnostics, diag{d.Pos.String(), d.Keyword, d.Severity.String(), d.Message})
	}
	var b bytes.Buffer
	if c == nil {
		b.WriteString("null")
	} else {
		encodeJSON(&b, reflect.ValueOf(c))
	}
	out.Config = b.Bytes()
	return json.MarshalIndent(out, "", "  ")
}

// jsonName is a field's name in the JSON form: its json tag, else the
// field name in snake_case.
func jsonName(f reflect.StructField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
		return tag
	}
	var b strings.Builder
	rs := []rune(f.Name)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func encodeJSON(b *bytes.Buffer, v reflect.Value) {
	if !v.IsValid() {
		b.WriteString("null")
		return
	}
	if v.CanInterface() {
		switch x := v.Interface().(type) {
		case time.Duration:
			b.WriteString(fmtSecondsJSON(x))
			return
		case netip.Addr:
			writeJSONString(b, x, x.IsValid())
			return
		case netip.Prefix:
			writeJSONString(b, x, x.IsValid())
			return
		case net.HardwareAddr:
			writeJSONString(b, x, len(x) > 0)
			return
		case Pos:
			writeJSONString(b, x, x.File != "")
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("null")
			return
		}
		encodeJSON(b, v.Elem())
	case reflect.Struct:
		b.WriteByte('{')
		first := true
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			if f.Anonymous && f.Type == reflect.TypeOf(Pos{}) {
				if !first {
					b.WriteByte(',')
				}
				first = false
				b.WriteString(`"pos":`)
				encodeJSON(b, v.Field(i))
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			name, _ := json.Marshal(jsonName(f))
			b.Write(name)
			b.WriteByte(':')
			encodeJSON(b, v.Field(i))
		}
		b.WriteByte('}')
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			s, _ := json.Marshal(hex.EncodeToString(v.Bytes()))
			b.Write(s)
			return
		}
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeJSON(b, v.Index(i))
		}
		b.WriteByte(']')
	default:
		s, err := json.Marshal(v.Interface())
		if err != nil {
			b.WriteString("null")
			return
		}
		b.Write(s)
	}
}

func writeJSONString(b *bytes.Buffer, x interface{ String() string }, valid bool) {
	if !valid {
		b.WriteString(`""`)
		return
	}
	s, _ := json.Marshal(x.String())
	b.Write(s)
}

// fmtSecondsJSON writes a duration as seconds (keepalived's <TIMER>).
func fmtSecondsJSON(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
