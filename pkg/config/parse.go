package config

// node is one statement: a keyword, its arguments on the same line and,
// when it opens one, the statements of its block.
type node struct {
	pos      Pos
	key      string
	args     []token
	children []*node
	block    bool
}

// treeBuilder turns lines of tokens into a tree of nodes. Braces may share
// a line with keywords or stand alone; a "{" at the start of a line opens
// the block of the statement on the line before.
type treeBuilder struct {
	d       *diagSink
	root    node
	stack   []*node
	pending *node // statement of the previous line that may take a "{"
}

func newTreeBuilder(d *diagSink) *treeBuilder {
	b := &treeBuilder{d: d}
	b.root.block = true
	b.stack = []*node{&b.root}
	return b
}

func (b *treeBuilder) line(toks []token) {
	var cur *node
	for _, t := range toks {
		if b.d.aborted {
			return
		}
		switch {
		case !t.quoted && t.text == "{":
			target := cur
			if target == nil {
				target = b.pending
			}
			b.pending, cur = nil, nil
			if target == nil || target.block {
				b.d.errorf(t.pos, "{", "'{' without a keyword to open a block for")
				target = &node{pos: t.pos, key: "{"} // balances the matching '}'; not in the tree
			}
			if len(b.stack) > maxBlockDepth {
				b.d.fatal(t.pos, target.key, "blocks nested more than %d deep", maxBlockDepth)
				return
			}
			target.block = true
			b.stack = append(b.stack, target)
		case !t.quoted && t.text == "}":
			cur, b.pending = nil, nil
			if len(b.stack) == 1 {
				b.d.errorf(t.pos, "}", "stray '}' closes no block")
				continue
			}
			b.stack = b.stack[:len(b.stack)-1]
		case cur == nil:
			cur = &node{pos: t.pos, key: t.text}
			top := b.stack[len(b.stack)-1]
			top.children = append(top.children, cur)
		default:
			cur.args = append(cur.args, t)
		}
	}
	b.pending = cur
}

// finish reports blocks still open at the end of input.
func (b *treeBuilder) finish() {
	for i := len(b.stack) - 1; i >= 1; i-- {
		n := b.stack[i]
		b.d.errorf(n.pos, n.key, "block is never closed (missing '}')")
	}
	b.stack = b.stack[:1]
}
