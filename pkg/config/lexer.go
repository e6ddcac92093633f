package config

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Limits that keep hostile or garbage input linear in time and bounded in
// memory.
const (
	maxLineLen      = 64 << 10 // bytes in one line, before and after substitution
	maxFileSize     = 16 << 20 // bytes in one file
	maxTotalSize    = 64 << 20 // bytes over all files
	maxIncludeDepth = 16
	maxBlockDepth   = 32
	maxSubstRounds  = 32      // nested $NAME expansions in one line
	maxLines        = 1 << 20 // logical lines, including ~SEQ/~LST/multi-line expansions
	maxSeqValues    = 1 << 16
	maxBraceExpand  = 256
	maxSubstLen     = maxLineLen * 16 // bytes in one line after substitution
	// maxExpanded bounds the text produced by reading: every line that is
	// tokenised plus everything substitution writes on the way.
	maxExpanded = 64 << 20
	maxTokens   = 1 << 20 // words and braces over the whole configuration
	maxFiles    = 4096    // files read, the main one and every include
)

// Options changes how a configuration is read.
type Options struct {
	// ConfigID selects "@ID" conditional lines (keepalived's -i). Empty
	// means keepalived's default: the host name up to the first dot.
	ConfigID string
	// ReadFile reads the configuration and its includes; nil means
	// readConfigFile (regular, non-executable files only, bounded size).
	ReadFile func(name string) ([]byte, error)
	// Glob expands include patterns; nil means filepath.Glob.
	Glob func(pattern string) ([]string, error)
}

func (o *Options) fill() {
	if o.ConfigID == "" {
		h, _ := os.Hostname()
		o.ConfigID, _, _ = strings.Cut(h, ".")
	}
	if o.ReadFile == nil {
		o.ReadFile = readConfigFile
	}
	if o.Glob == nil {
		o.Glob = filepath.Glob
	}
}

// token is one word of a line. Quoted words are never keywords or braces.
type token struct {
	text   string
	quoted bool
	pos    Pos
}

// lexer turns files into lines of tokens: it removes comments, follows
// includes, applies @conditionals, records $NAME definitions and expands
// $NAME, ${NAME}, ~SEQ and ~LST. Each logical line goes to emit.
type lexer struct {
	opts  Options
	d     *diagSink
	emit  func([]token)
	vars  map[string]string
	open  []string // absolute paths of the files being read, outermost first
	dirs  []string // directory of each open file, for ${_PWD} and includes
	files []string
	total int
	lines int
	// expanded counts the bytes tokenised or written by substitution,
	// tokens the tokens emitted; both against the limits above.
	expanded int
	tokens   int
}

func newLexer(opts Options, d *diagSink, emit func([]token)) *lexer {
	opts.fill()
	return &lexer{opts: opts, d: d, emit: emit, vars: map[string]string{}}
}

// file reads one file's contents. name is used in positions.
func (l *lexer) file(name string, src []byte, from Pos) {
	if l.d.aborted {
		return
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		abs = name
	}
	if len(l.files) >= maxFiles {
		l.d.fatal(from, "include", "more than %d configuration files", maxFiles)
		return
	}
	if len(src) > maxFileSize {
		l.d.fatal(from, "include", "%s is %d bytes, more than the %d a configuration may have", name, len(src), maxFileSize)
		return
	}
	l.total += len(src)
	if l.total > maxTotalSize {
		l.d.fatal(from, "include", "configuration files total more than %d bytes", maxTotalSize)
		return
	}
	if i := bytes.IndexByte(src, 0); i >= 0 {
		line := 1 + bytes.Count(src[:i], []byte{'\n'})
		l.d.fatal(Pos{name, line}, "file", "binary data (NUL byte): not a text configuration file")
		return
	}
	l.files = append(l.files, name)
	l.open = append(l.open, abs)
	l.dirs = append(l.dirs, filepath.Dir(name))
	defer func() {
		l.open = l.open[:len(l.open)-1]
		l.dirs = l.dirs[:len(l.dirs)-1]
	}()

	lineNo := 0
	for len(src) > 0 && !l.d.aborted {
		var raw []byte
		raw, src = cutLine(src)
		lineNo++
		pos := Pos{name, lineNo}
		if len(raw) > maxLineLen {
			l.d.errorf(pos, "line", "longer than %d bytes", maxLineLen)
			continue
		}
		text := strings.TrimSpace(stripComment(string(raw)))
		if text == "" {
			continue
		}
		if kw, rest := cutWord(text); isInclude(kw) {
			l.include(kw, strings.TrimSpace(rest), pos)
			continue
		}
		if _, val, ok := splitDefinition(text); ok && strings.HasSuffix(val, `\`) {
			// Multi-line definition: each line but the last ends in '\'.
			var b strings.Builder
			b.WriteString(strings.TrimSuffix(text, `\`))
			for len(src) > 0 {
				var next []byte
				next, src = cutLine(src)
				lineNo++
				part := strings.TrimSpace(stripComment(string(next)))
				cont := strings.HasSuffix(part, `\`)
				b.WriteString("\n")
				b.WriteString(strings.TrimSuffix(part, `\`))
				if b.Len() > maxLineLen*16 {
					l.d.errorf(pos, "definition", "multi-line definition longer than %d bytes", maxLineLen*16)
					break
				}
				if !cont {
					break
				}
			}
			text = b.String()
		}
		l.line(text, pos, 0, false)
	}
}

// cutLine splits off the first line (without its "\n" or "\r\n").
func cutLine(src []byte) (line, rest []byte) {
	i := bytes.IndexByte(src, '\n')
	if i < 0 {
		line, rest = src, nil
	} else {
		line, rest = src[:i], src[i+1:]
	}
	return bytes.TrimSuffix(line, []byte{'\r'}), rest
}

func isInclude(kw string) bool {
	switch kw {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// stripComment removes a '#' or '!' comment that is not inside quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#' || c == '!':
			return s[:i]
		}
	}
	return s
}

// splitDefinition recognises "$NAME=value".
func splitDefinition(s string) (name, val string, ok bool) {
	if len(s) < 3 || s[0] != '$' {
		return "", "", false
	}
	eq := strings.IndexByte(s, '=')
	if eq < 2 || !validVarName(s[1:eq]) {
		return "", "", false
	}
	return s[1:eq], strings.TrimSpace(s[eq+1:]), true
}

func validVarName(n string) bool {
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !isNameByte(n[i]) {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// line handles one logical line: conditionals, definitions, ~SEQ/~LST,
// substitution, then tokenising. substituted is true for lines produced
// by substitution, which are not substituted again.
func (l *lexer) line(text string, pos Pos, depth int, substituted bool) {
	if l.d.aborted {
		return
	}
	l.lines++
	if l.lines > maxLines {
		l.d.fatal(pos, "line", "more than %d configuration lines after expansion", maxLines)
		return
	}
	if depth > maxSubstRounds {
		l.d.errorf(pos, "$", "substitution nested more than %d deep", maxSubstRounds)
		return
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	// Conditional configuration: "@ID rest" keeps rest only on ID,
	// "@^ID rest" everywhere but ID.
	for strings.HasPrefix(text, "@") {
		word, rest := cutWord(text)
		id, neg := strings.CutPrefix(word[1:], "^")
		if (id == l.opts.ConfigID) == neg {
			return
		}
		text = strings.TrimSpace(rest)
		if text == "" {
			return
		}
	}
	if name, val, ok := splitDefinition(text); ok {
		l.vars[name] = val
		return
	}
	if strings.HasPrefix(text, "~SEQ") || strings.HasPrefix(text, "~LST") {
		l.sequence(text, pos, depth)
		return
	}
	if !substituted && strings.Contains(text, "$") {
		out, changed, err := l.substitute(text, pos)
		if err != nil {
			l.d.errorf(pos, "$", "%v", err)
			return
		}
		if l.d.aborted {
			return
		}
		if changed {
			for _, part := range strings.Split(out, "\n") {
				l.line(part, pos, depth+1, true)
			}
			return
		}
	}
	if !l.spend(len(text), pos) {
		return
	}
	toks, err := tokenize(text, pos)
	if err != nil {
		l.d.errorf(pos, firstWord(text), "%v", err)
	}
	l.tokens += len(toks)
	if l.tokens > maxTokens {
		l.d.fatal(pos, firstWord(text), "more than %d words in the configuration after expansion", maxTokens)
		return
	}
	if len(toks) > 0 {
		l.emit(toks)
	}
}

// spend charges n bytes of expanded text to the reading budget; false
// (after a fatal error) when the budget is gone.
func (l *lexer) spend(n int, pos Pos) bool {
	l.expanded += n
	if l.expanded > maxExpanded {
		l.d.fatal(pos, "$", "configuration larger than %d bytes after expansion of definitions, ~SEQ and ~LST", maxExpanded)
		return false
	}
	return true
}

// cutWord splits s at its first run of blanks.
func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

func firstWord(s string) string {
	w, _ := cutWord(strings.TrimSpace(s))
	if len(w) > 40 {
		w = w[:40] + "..."
	}
	return w
}

// substitute expands $NAME (followed by whitespace or the end) and
// ${NAME} until nothing changes. Undefined names are left alone. No
// result may exceed maxSubstLen and every byte written is charged to the
// reading budget, so self-multiplying definitions stop early.
func (l *lexer) substitute(s string, pos Pos) (string, bool, error) {
	changed := false
	for round := 0; ; round++ {
		if round == maxSubstRounds {
			return "", false, fmt.Errorf("substitution nested more than %d deep (recursive definition?)", maxSubstRounds)
		}
		out, did, err := l.substituteOnce(s, pos)
		if err != nil {
			// What was built before giving up counts as well, or lines
			// that each fail late would cost without limit.
			l.spend(maxSubstLen, pos)
			return "", false, err
		}
		if !did {
			return s, changed, nil
		}
		if !l.spend(len(out), pos) {
			return "", false, nil
		}
		s, changed = out, true
	}
}

var errSubstTooLong = fmt.Errorf("line longer than %d bytes after substitution", maxSubstLen)

func (l *lexer) substituteOnce(s string, pos Pos) (string, bool, error) {
	var b strings.Builder
	did := false
	for i := 0; i < len(s); i++ {
		if b.Len() > maxSubstLen {
			return "", false, errSubstTooLong
		}
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end >= 0 {
				inner := s[i+2 : i+2+end]
				if v, ok := l.lookup(inner, pos); ok {
					if b.Len()+len(v) > maxSubstLen {
						return "", false, errSubstTooLong
					}
					b.WriteString(v)
					i += 2 + end
					did = true
					continue
				}
			}
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && isNameByte(s[j]) {
			j++
		}
		if j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' {
			b.WriteByte(s[i])
			continue
		}
		if v, ok := l.lookup(s[i+1:j], pos); ok && validVarName(s[i+1:j]) {
			if b.Len()+len(v) > maxSubstLen {
				return "", false, errSubstTooLong
			}
			b.WriteString(v)
			i = j - 1
			did = true
			continue
		}
		b.WriteByte(s[i])
	}
	if b.Len() > maxSubstLen {
		return "", false, errSubstTooLong
	}
	return b.String(), did, nil
}

// lookup returns a definition or a predefined name.
func (l *lexer) lookup(name string, pos Pos) (string, bool) {
	switch {
	case name == "_PWD":
		if len(l.dirs) > 0 {
			d, err := filepath.Abs(l.dirs[len(l.dirs)-1])
			if err == nil {
				return d, true
			}
			return l.dirs[len(l.dirs)-1], true
		}
		return ".", true
	case name == "_INSTANCE":
		return l.opts.ConfigID, true
	case name == "_HASH":
		return "#", true
	case name == "_BANG":
		return "!", true
	case name == "_RANDOM" || strings.HasPrefix(name, "_RANDOM "):
		return l.random(name[len("_RANDOM"):], pos)
	}
	v, ok := l.vars[name]
	return v, ok
}

// random expands ${_RANDOM [min [max]]} as keepalived's get_random does:
// the parameters are unsigned decimal numbers separated by spaces (any
// other text, or a trailing space, and it is not a definition at all),
// min defaults to 0 and max to 32767, a third number is ignored. A min
// above max is an error and gives min (keepalived since 2.4.0; 2.2.7
// divides by zero on ${_RANDOM 0 18446744073709551615} and prints
// garbage for a reversed range); a number beyond 64 bits is an error and
// counts as the largest one, as strtoul clamps it.
func (l *lexer) random(params string, pos Pos) (string, bool) {
	if strings.HasSuffix(params, " ") || strings.Trim(params, " 0123456789") != "" {
		return "", false
	}
	nums := []uint64{0, 32767}
	f := strings.Fields(params)
	if len(f) > 2 {
		l.d.warnf(pos, "${_RANDOM}", "too many parameters %q, only min and max are used", params)
		f = f[:2]
	}
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			l.d.errorf(pos, "${_RANDOM}", "%s is more than %d", s, uint64(math.MaxUint64))
			n = math.MaxUint64
		}
		nums[i] = n
	}
	lo, hi := nums[0], nums[1]
	if lo > hi {
		l.d.errorf(pos, "${_RANDOM}", "min %d exceeds max %d, using %d", lo, hi, lo)
		hi = lo
	}
	var v uint64
	if span := hi - lo + 1; span == 0 { // the whole 64-bit range
		v = rand.Uint64()
	} else {
		v = lo + rand.Uint64N(span)
	}
	return strconv.FormatUint(v, 10), true
}

// sequence expands "~SEQ(var, [start,] [step,] end) rest",
// "~SEQx(...)" and "~LST(var|{v1,v2}, val|{a,b}, ...) rest".
func (l *lexer) sequence(text string, pos Pos, depth int) {
	open := strings.IndexByte(text, '(')
	closeAt := strings.IndexByte(text, ')')
	if open < 0 || closeAt < open {
		l.d.errorf(pos, firstWord(text), "missing parentheses")
		return
	}
	kind := text[:open]
	inner := text[open+1 : closeAt]
	rest := text[closeAt+1:]
	if subst, changed, err := l.substitute(inner, pos); err == nil && changed {
		inner = subst
	}
	var names []string
	var values [][]string
	switch kind {
	case "~SEQ", "~SEQx":
		f := strings.Split(inner, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if len(f) < 2 || len(f) > 4 || !validVarName(f[0]) {
			l.d.errorf(pos, kind, "want %s(var, [start,] [step,] end)", kind)
			return
		}
		nums := make([]int64, len(f)-1)
		for i, s := range f[1:] {
			n, err := strconv.ParseInt(s, 0, 64)
			if err != nil {
				l.d.errorf(pos, kind, "%q is not a number", s)
				return
			}
			nums[i] = n
		}
		// As keepalived's add_seq: one number counts from 1 (from -1 when
		// negative) to it, two count by one either way, three need a step
		// that goes from start towards end.
		var start, step, end int64
		switch len(nums) {
		case 1:
			end, start, step = nums[0], 1, 1
			if end < 1 {
				step = -1
			}
			if end < 0 {
				start = -1
			}
		case 2:
			start, end, step = nums[0], nums[1], 1
			if start > end {
				step = -1
			}
		case 3:
			start, step, end = nums[0], nums[1], nums[2]
			if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
				l.d.errorf(pos, kind, "step %d does not lead from %d to %d", step, start, end)
				return
			}
		}
		if kind == "~SEQx" && (start < 0 || end < 0) {
			l.d.errorf(pos, kind, "only valid for positive numbers")
			return
		}
		n, ok := seqCount(start, step, end)
		if !ok {
			l.d.errorf(pos, kind, "more than %d values", maxSeqValues)
			return
		}
		names = []string{f[0]}
		for k := uint64(0); k < n; k++ {
			// Two's complement: exact for every value between start and end.
			v := int64(uint64(start) + k*uint64(step))
			s := strconv.FormatInt(v, 10)
			if kind == "~SEQx" {
				s = strconv.FormatInt(v, 16)
			}
			values = append(values, []string{s})
		}
	case "~LST":
		items := splitList(inner)
		if len(items) < 2 {
			l.d.errorf(pos, kind, "want ~LST(var, value, ...)")
			return
		}
		names = splitGroup(items[0])
		for _, n := range names {
			if !validVarName(n) {
				l.d.errorf(pos, kind, "%q is not a variable name", n)
				return
			}
		}
		for _, it := range items[1:] {
			vals := splitGroup(it)
			if len(vals) != len(names) {
				l.d.errorf(pos, kind, "value %q does not match %d variable(s)", it, len(names))
				return
			}
			values = append(values, vals)
		}
	default:
		l.d.errorf(pos, kind, "unknown block, want ~SEQ, ~SEQx or ~LST")
		return
	}
	for _, vals := range values {
		for i, n := range names {
			l.vars[n] = vals[i]
		}
		l.line(rest, pos, depth+1, false)
		if l.d.aborted {
			return
		}
	}
}

// seqCount returns how many values start, start+step, ... reach end
// (step non-zero and pointing towards end), without overflowing; ok is
// false past maxSeqValues.
func seqCount(start, step, end int64) (n uint64, ok bool) {
	var dist, stride uint64
	if step > 0 {
		dist, stride = uint64(end)-uint64(start), uint64(step)
	} else {
		dist, stride = uint64(start)-uint64(end), -uint64(step)
	}
	q := dist / stride
	if q >= maxSeqValues {
		return 0, false
	}
	return q + 1, true
}

// splitList splits on commas outside {...}.
func splitList(s string) []string {
	var out []string
	level, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			level++
		case '}':
			level--
		case ',':
			if level == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// splitGroup turns "{a, b}" into [a b] and "a" into [a].
func splitGroup(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return []string{s}
	}
	var out []string
	for _, p := range strings.Split(s[1:len(s)-1], ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// include reads the files an include line names. keepalived's plain
// "include" tolerates missing files (a warning here); the variants with
// checks make them errors.
func (l *lexer) include(kw, arg string, pos Pos) {
	// Braces belong to the glob here, so the name is not tokenised unless
	// quoted.
	var toks []token
	if strings.HasPrefix(arg, `"`) || strings.HasPrefix(arg, "'") {
		toks, _ = tokenize(arg, pos)
	} else if arg != "" {
		word, rest := cutWord(arg)
		toks = append(toks, token{text: word, pos: pos})
		if rest != "" {
			toks = append(toks, token{text: rest, pos: pos})
		}
	}
	if len(toks) == 0 {
		l.d.errorf(pos, kw, "needs a file name")
		return
	}
	if len(toks) > 1 {
		l.d.warnf(pos, kw, "only one file name is used, %q ignored", toks[1].text)
	}
	if len(l.open) >= maxIncludeDepth {
		l.d.errorf(pos, kw, "includes nested more than %d deep", maxIncludeDepth)
		return
	}
	pattern := toks[0].text
	if !filepath.IsAbs(pattern) && len(l.dirs) > 0 {
		pattern = filepath.Join(l.dirs[len(l.dirs)-1], pattern)
	}
	strict := kw == "includem" || kw == "includew" || kw == "includea" || kw == "includeb"
	var matches []string
	for _, p := range expandBraces(pattern) {
		m, err := l.opts.Glob(p)
		if err != nil {
			l.d.errorf(pos, kw, "bad pattern %q: %v", toks[0].text, err)
			return
		}
		matches = append(matches, m...)
	}
	if len(matches) == 0 {
		if strict && (kw != "includem" || !strings.ContainsAny(pattern, "*?[")) {
			l.d.errorf(pos, kw, "%q matches no file", toks[0].text)
		} else {
			l.d.warnf(pos, kw, "%q matches no file", toks[0].text)
		}
		return
	}
	for _, m := range matches {
		abs, err := filepath.Abs(m)
		if err != nil {
			abs = m
		}
		if i := indexOf(l.open, abs); i >= 0 {
			chain := append(append([]string{}, l.open[i:]...), abs)
			l.d.errorf(pos, kw, "include cycle: %s", strings.Join(chain, " -> "))
			continue
		}
		src, err := l.opts.ReadFile(m)
		if err != nil {
			if kw == "include" {
				l.d.warnf(pos, kw, "cannot read %s: %v", m, err)
			} else {
				l.d.errorf(pos, kw, "cannot read %s: %v", m, err)
			}
			continue
		}
		l.file(m, src, pos)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// expandBraces expands csh-style "{a,b}" alternatives, as glob(3) with
// GLOB_BRACE does, up to maxBraceExpand results.
func expandBraces(p string) []string {
	out := []string{p}
	for round := 0; round < 8; round++ {
		var next []string
		grew := false
		for _, s := range out {
			i := strings.IndexByte(s, '{')
			if i < 0 {
				next = append(next, s)
				continue
			}
			level, j := 0, i
			for ; j < len(s); j++ {
				if s[j] == '{' {
					level++
				} else if s[j] == '}' {
					level--
					if level == 0 {
						break
					}
				}
			}
			if j == len(s) {
				next = append(next, s)
				continue
			}
			grew = true
			for _, alt := range splitList(s[i+1 : j]) {
				next = append(next, s[:i]+alt+s[j+1:])
				if len(next) >= maxBraceExpand {
					return next
				}
			}
		}
		out = next
		if !grew {
			break
		}
	}
	return out
}

// tokenize splits a line into words and braces. Quotes (" or ') group
// words and may sit inside a word; escapes work inside quotes; ${...} is
// kept whole.
func tokenize(s string, pos Pos) ([]token, error) {
	var toks []token
	var cur strings.Builder
	have, quoted := false, false
	flush := func() {
		if have {
			toks = append(toks, token{text: cur.String(), quoted: quoted, pos: pos})
		}
		cur.Reset()
		have, quoted = false, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			flush()
		case c == '{' || c == '}':
			flush()
			toks = append(toks, token{text: string(c), pos: pos})
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				end = len(s) - i - 1
			}
			cur.WriteString(s[i : i+end+1])
			have = true
			i += end
		case c == '"' || c == '\'':
			q := c
			have, quoted = true, true
			i++
			closed := false
			for ; i < len(s); i++ {
				if s[i] == q {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) {
					n := unescape(s[i+1:], &cur)
					i += n
					continue
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				flush()
				return toks, fmt.Errorf("unterminated quoted string")
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	flush()
	return toks, nil
}

// unescape writes the character escaped by the text after a backslash and
// returns how many bytes of s it used.
func unescape(s string, b *strings.Builder) int {
	c := s[0]
	switch c {
	case 'a':
		b.WriteByte('\a')
	case 'b':
		b.WriteByte('\b')
	case 'E':
		b.WriteByte(0x1b)
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'v':
		b.WriteByte('\v')
	case 'c':
		if len(s) > 1 {
			b.WriteByte(s[1] & 0x1f)
			return 2
		}
		b.WriteByte('c')
	case 'x':
		n, v := 0, 0
		for n < 2 && 1+n < len(s) && isHex(s[1+n]) {
			v = v*16 + hexVal(s[1+n])
			n++
		}
		if n == 0 {
			b.WriteByte('x')
			return 1
		}
		b.WriteByte(byte(v))
		return 1 + n
	default:
		if c >= '0' && c <= '7' {
			n, v := 0, 0
			for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
				v = v*8 + int(s[n]-'0')
				n++
			}
			b.WriteByte(byte(v))
			return n
		}
		b.WriteByte(c)
	}
	return 1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}
