package aff4

import (
	"fmt"
	"strings"
)

// term is an RDF node: an IRI (isIRI) or a literal with optional datatype.
type term struct {
	val   string
	isIRI bool
	dtype string // datatype IRI of a literal
}

type triple struct {
	s, p string
	o    term
}

// parseTurtle is a small Turtle parser covering what AFF4 tools emit:
// @prefix/@base, prefixed names, <IRIs>, "literals" with ^^types or @lang,
// 'a', ';' and ',' lists, numbers and booleans. Blank nodes and collections
// are not used by AFF4 and are rejected.
func parseTurtle(src string) ([]triple, error) {
	p := &ttl{s: src, prefixes: map[string]string{}}
	var out []triple
	for {
		p.skipWS()
		if p.eof() {
			return out, nil
		}
		if p.peekWord("@prefix") || p.peekWordCI("PREFIX") {
			sparql := !strings.HasPrefix(p.s[p.i:], "@")
			if sparql {
				p.i += len("PREFIX")
			} else {
				p.i += len("@prefix")
			}
			p.skipWS()
			j := strings.IndexByte(p.s[p.i:], ':')
			if j < 0 {
				return nil, p.errf("bad prefix")
			}
			name := strings.TrimSpace(p.s[p.i : p.i+j])
			p.i += j + 1
			p.skipWS()
			iri, err := p.iriRef()
			if err != nil {
				return nil, err
			}
			p.prefixes[name] = iri
			p.skipWS()
			if !sparql {
				if err := p.expect('.'); err != nil {
					return nil, err
				}
			}
			continue
		}
		if p.peekWord("@base") {
			p.i += len("@base")
			p.skipWS()
			iri, err := p.iriRef()
			if err != nil {
				return nil, err
			}
			p.base = iri
			p.skipWS()
			if err := p.expect('.'); err != nil {
				return nil, err
			}
			continue
		}
		subj, err := p.term()
		if err != nil {
			return nil, err
		}
		if !subj.isIRI {
			return nil, p.errf("literal subject")
		}
		for {
			p.skipWS()
			pred, err := p.term()
			if err != nil {
				return nil, err
			}
			for {
				p.skipWS()
				obj, err := p.term()
				if err != nil {
					return nil, err
				}
				out = append(out, triple{subj.val, pred.val, obj})
				p.skipWS()
				if p.peek() == ',' {
					p.i++
					continue
				}
				break
			}
			p.skipWS()
			if p.peek() == ';' {
				p.i++
				p.skipWS()
				for p.peek() == ';' {
					p.i++
					p.skipWS()
				}
				if p.peek() == '.' {
					break
				}
				continue
			}
			break
		}
		p.skipWS()
		if err := p.expect('.'); err != nil {
			return nil, err
		}
	}
}

type ttl struct {
	s        string
	i        int
	prefixes map[string]string
	base     string
}

func (p *ttl) eof() bool { return p.i >= len(p.s) }
func (p *ttl) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}
func (p *ttl) errf(f string, a ...any) error {
	line := strings.Count(p.s[:min(p.i, len(p.s))], "\n") + 1
	return fmt.Errorf("aff4: turtle line %d: %s", line, fmt.Sprintf(f, a...))
}
func (p *ttl) peekWord(w string) bool { return strings.HasPrefix(p.s[p.i:], w) }
func (p *ttl) peekWordCI(w string) bool {
	return len(p.s)-p.i > len(w) && strings.EqualFold(p.s[p.i:p.i+len(w)], w) && (p.s[p.i+len(w)] == ' ' || p.s[p.i+len(w)] == '\t')
}
func (p *ttl) expect(c byte) error {
	if p.peek() != c {
		return p.errf("expected %q, got %q", c, p.peek())
	}
	p.i++
	return nil
}
func (p *ttl) skipWS() {
	for !p.eof() {
		c := p.s[p.i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			p.i++
		} else if c == '#' {
			for !p.eof() && p.s[p.i] != '\n' {
				p.i++
			}
		} else {
			return
		}
	}
}

func (p *ttl) iriRef() (string, error) {
	if err := p.expect('<'); err != nil {
		return "", err
	}
	j := strings.IndexByte(p.s[p.i:], '>')
	if j < 0 {
		return "", p.errf("unterminated IRI")
	}
	v := p.s[p.i : p.i+j]
	p.i += j + 1
	if p.base != "" && !strings.Contains(v, ":") {
		v = p.base + v
	}
	return v, nil
}

func isNameEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ';', ',', '<', '"', '#':
		return true
	}
	return false
}

func (p *ttl) term() (term, error) {
	c := p.peek()
	switch {
	case c == '<':
		v, err := p.iriRef()
		return term{val: v, isIRI: true}, err
	case c == '"' || c == '\'':
		return p.literal()
	case c == '[' || c == '(' || c == '_':
		return term{}, p.errf("blank nodes are not supported")
	case c == 0:
		return term{}, p.errf("unexpected end")
	}
	j := p.i
	for j < len(p.s) && !isNameEnd(p.s[j]) {
		j++
	}
	// A trailing '.' ends the statement, not the name.
	for j > p.i && p.s[j-1] == '.' {
		j--
	}
	tok := p.s[p.i:j]
	p.i = j
	if tok == "" {
		return term{}, p.errf("empty term")
	}
	if tok == "a" {
		return term{val: "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", isIRI: true}, nil
	}
	if tok == "true" || tok == "false" {
		return term{val: tok, dtype: "http://www.w3.org/2001/XMLSchema#boolean"}, nil
	}
	if (tok[0] >= '0' && tok[0] <= '9') || tok[0] == '-' || tok[0] == '+' {
		return term{val: tok, dtype: "http://www.w3.org/2001/XMLSchema#integer"}, nil
	}
	k := strings.IndexByte(tok, ':')
	if k < 0 {
		return term{}, p.errf("bad term %q", tok)
	}
	ns, ok := p.prefixes[tok[:k]]
	if !ok {
		return term{}, p.errf("unknown prefix %q", tok[:k])
	}
	return term{val: ns + tok[k+1:], isIRI: true}, nil
}

func (p *ttl) literal() (term, error) {
	q := p.s[p.i]
	long := strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))
	if long {
		p.i += 3
	} else {
		p.i++
	}
	var b strings.Builder
	for {
		if p.eof() {
			return term{}, p.errf("unterminated literal")
		}
		c := p.s[p.i]
		if c == '\\' && p.i+1 < len(p.s) {
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'u', 'U':
				n := 4
				if e == 'U' {
					n = 8
				}
				if p.i+n > len(p.s) {
					return term{}, p.errf("bad escape")
				}
				var r rune
				fmt.Sscanf(p.s[p.i:p.i+n], "%x", &r)
				b.WriteRune(r)
				p.i += n
			default:
				b.WriteByte(e)
			}
			continue
		}
		if long {
			if strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3)) {
				p.i += 3
				break
			}
		} else if c == q {
			p.i++
			break
		}
		b.WriteByte(c)
		p.i++
	}
	t := term{val: b.String()}
	if strings.HasPrefix(p.s[p.i:], "^^") {
		p.i += 2
		dt, err := p.term()
		if err != nil {
			return term{}, err
		}
		t.dtype = dt.val
	} else if p.peek() == '@' {
		for !p.eof() && !isNameEnd(p.s[p.i]) && p.s[p.i] != '.' {
			p.i++
		}
	}
	return t, nil
}
