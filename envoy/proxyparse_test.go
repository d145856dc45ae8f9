package envoy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// A directive is one nginx or Caddyfile directive: its name, arguments and
// block (nil when it has none).
type directive struct {
	name  string
	args  []string
	block []*directive
	line  int
}

func (d *directive) String() string {
	return fmt.Sprintf("%s %s (line %d)", d.name, strings.Join(d.args, " "), d.line)
}

// arg returns the i'th argument, or "".
func (d *directive) arg(i int) string {
	if i < len(d.args) {
		return d.args[i]
	}
	return ""
}

// find returns every directive called name in ds and, recursively, in
// their blocks, in file order.
func find(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
		out = append(out, find(d.block, name)...)
	}
	return out
}

// nginxToken is a word of an nginx config; quoted words are never
// punctuation.
type nginxToken struct {
	text   string
	quoted bool
	line   int
}

// tokenizeNginx splits nginx config text into words and the punctuation
// `;`, `{` and `}`, dropping comments and unquoting strings.
func tokenizeNginx(src string) ([]nginxToken, error) {
	var (
		toks []nginxToken
		line = 1
		rs   = []rune(src)
	)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\n':
			line++
		case unicode.IsSpace(c):
		case c == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			i--
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, nginxToken{text: string(c), line: line})
		case c == '"' || c == '\'':
			var b strings.Builder
			for i++; i < len(rs) && rs[i] != c; i++ {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
				}
				b.WriteRune(rs[i])
			}
			if i >= len(rs) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			toks = append(toks, nginxToken{text: b.String(), quoted: true, line: line})
		default:
			start := i
			for i < len(rs) && !unicode.IsSpace(rs[i]) && !strings.ContainsRune(";{}\"'", rs[i]) {
				i++
			}
			toks = append(toks, nginxToken{text: string(rs[start:i]), line: line})
			i--
		}
	}
	return toks, nil
}

// parseNginx parses nginx config text into directives.
func parseNginx(src string) ([]*directive, error) {
	toks, err := tokenizeNginx(src)
	if err != nil {
		return nil, err
	}
	ds, rest, err := nginxBlock(toks, false)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("line %d: unexpected }", rest[0].line)
	}
	return ds, err
}

// nginxBlock parses directives until a `}` (when inBlock) or the end, and
// returns the tokens after it.
func nginxBlock(toks []nginxToken, inBlock bool) ([]*directive, []nginxToken, error) {
	var ds []*directive
	for len(toks) > 0 {
		t := toks[0]
		if !t.quoted && t.text == "}" {
			if !inBlock {
				return ds, toks, nil
			}
			return ds, toks[1:], nil
		}
		d := &directive{name: t.text, line: t.line}
		toks = toks[1:]
		for {
			if len(toks) == 0 {
				return nil, nil, fmt.Errorf("line %d: %s: unterminated directive", d.line, d.name)
			}
			t := toks[0]
			toks = toks[1:]
			if !t.quoted && t.text == ";" {
				break
			}
			if !t.quoted && t.text == "{" {
				var err error
				if d.block, toks, err = nginxBlock(toks, true); err != nil {
					return nil, nil, err
				}
				d.block = nonNil(d.block)
				break
			}
			if !t.quoted && t.text == "}" {
				return nil, nil, fmt.Errorf("line %d: unexpected }", t.line)
			}
			d.args = append(d.args, t.text)
		}
		ds = append(ds, d)
	}
	if inBlock {
		return nil, nil, errors.New("unterminated block")
	}
	return ds, nil, nil
}

func nonNil(ds []*directive) []*directive {
	if ds == nil {
		return []*directive{}
	}
	return ds
}

// parseCaddyfile parses Caddyfile text into directives: one per line, a
// trailing `{` opening its block and a lone `}` closing it. The global
// options block is the directive with an empty name.
func parseCaddyfile(src string) ([]*directive, error) {
	root := &directive{block: []*directive{}}
	stack := []*directive{root}
	for n, raw := range strings.Split(src, "\n") {
		words := caddyWords(raw)
		if len(words) == 0 {
			continue
		}
		top := stack[len(stack)-1]
		if len(words) == 1 && words[0] == "}" {
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: unexpected }", n+1)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		d := &directive{line: n + 1}
		opens := words[len(words)-1] == "{"
		if opens {
			words = words[:len(words)-1]
		}
		if len(words) > 0 {
			d.name, d.args = words[0], words[1:]
		}
		top.block = append(top.block, d)
		if opens {
			d.block = []*directive{}
			stack = append(stack, d)
		}
	}
	if len(stack) != 1 {
		return nil, errors.New("unterminated block")
	}
	return root.block, nil
}

// caddyWords splits a Caddyfile line into words, dropping a comment (a
// word starting with #) and unquoting "..." and `...`.
func caddyWords(line string) []string {
	var (
		words []string
		b     strings.Builder
		quote rune
		in    bool
	)
	flush := func() {
		if in {
			words = append(words, b.String())
		}
		b.Reset()
		in = false
	}
	for _, c := range line {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b.WriteRune(c)
		case c == '"' || c == '`':
			quote, in = c, true
		case unicode.IsSpace(c):
			flush()
		case c == '#' && !in:
			flush()
			return words
		default:
			b.WriteRune(c)
			in = true
		}
	}
	flush()
	return words
}
