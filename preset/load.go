package preset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Load decodes a Config from data, a JSON or YAML document, and validates
// it ([Config.Validate]). It returns the Config as the document writes it,
// without its defaults (see [Config.WithDefaults]), so that marshalling it
// gives the document back; on error, the zero Config.
//
// Data that is valid JSON is read as JSON; anything else as YAML (a
// single document; JSON is YAML too, but YAML parsers differ from JSON on
// corner cases, so JSON is never read as YAML). A YAML document is turned
// into JSON and both are decoded by [Config.UnmarshalJSON], so they obey
// the same rules:
//
//   - A key that names no field, at any depth, is an error naming its path
//     from the top and its line: `preset: config: unknown field
//     "retry.budget.windw" (line 7)`. Keys match ignoring case, as
//     encoding/json matches them.
//   - A key given twice in one object (ignoring case: both would set the
//     same field) is an error naming both lines, in JSON as in YAML.
//   - In YAML, keys must be strings (`1: x` is an error naming its path),
//     aliases are expanded, merge keys (<<) and tags other than YAML's
//     core ones are errors, and .inf is the rate "inf".
//
// An empty document (or one of only comments, or null) gives the zero
// Config: the defaults.
func Load(data []byte) (Config, error) {
	var (
		js    []byte
		lines map[string]int
		err   error
	)
	if json.Valid(data) {
		js, lines = data, map[string]int{}
		err = checkJSON(data, lines)
	} else {
		js, lines, err = yamlToJSON(data)
	}
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := c.UnmarshalJSON(js); err != nil {
		if u, ok := errors.AsType[*jsonx.UnknownFieldError](err); ok {
			if line, ok := lines[strings.ToLower(u.Field)]; ok {
				return Config{}, &lineError{err: err, line: line}
			}
		}
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// lineError is a decoding error with the line of the key it names.
type lineError struct {
	err  error
	line int
}

func (e *lineError) Error() string { return e.err.Error() + " (line " + strconv.Itoa(e.line) + ")" }
func (e *lineError) Unwrap() error { return e.err }

// keyPath is the path of key under parent, as jsonx names nested keys.
func keyPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// keys records the keys of one object, to find a key given twice.
type keys map[string]seenKey

type seenKey struct {
	key  string
	line int
}

// add records key, at line, in the object at path, or returns the error
// of a key given twice.
func (k keys) add(path, key string, line int) error {
	fold := strings.ToLower(key)
	if prev, ok := k[fold]; ok {
		return fmt.Errorf("preset: config: key %q (line %d) given twice: it is %q at line %d", keyPath(path, key), line, keyPath(path, prev.key), prev.line)
	}
	k[fold] = seenKey{key, line}
	return nil
}

// checkJSON checks that no object of data, valid JSON, has a key twice,
// and records the line of each key by its path (lower-cased) in lines.
func checkJSON(data []byte, lines map[string]int) error {
	type frame struct {
		obj    bool
		path   string
		key    string // in an object, the key whose value comes next
		wanted bool   // in an object, the next token is a key or its end
		seen   keys
		index  int // in an array, the index of the next value
	}
	lc := lineCounter{data: data}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("preset: config: %w", err) // not reached: data is valid
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.obj && top.wanted {
			key, _ := tok.(string)
			line := lc.line(dec.InputOffset())
			if err := top.seen.add(top.path, key, line); err != nil {
				return err
			}
			p := strings.ToLower(keyPath(top.path, key))
			if _, ok := lines[p]; !ok {
				lines[p] = line
			}
			top.key, top.wanted = key, false
			continue
		}
		path := "" // of this value
		if top != nil {
			if top.obj {
				path = keyPath(top.path, top.key)
				top.wanted = true
			} else {
				path = top.path + "[" + strconv.Itoa(top.index) + "]"
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, path: path, wanted: true, seen: keys{}})
		case json.Delim('['):
			stack = append(stack, &frame{path: path})
		}
	}
}

// lineCounter turns increasing offsets into data into line numbers,
// counting each newline once.
type lineCounter struct {
	data []byte
	off  int
	n    int // newlines before off
}

func (c *lineCounter) line(off int64) int {
	end := min(int(off), len(c.data))
	if end > c.off {
		c.n += bytes.Count(c.data[c.off:end], []byte{'\n'})
		c.off = end
	}
	return c.n + 1
}

// maxYAMLNodes bounds the nodes a YAML document may expand to, aliases
// expanded, so that a document of nested aliases (a "billion laughs")
// cannot make Load build a huge value.
const maxYAMLNodes = 100_000

// yamlToJSON converts a YAML document to JSON, checking its keys, and
// returns the line of each key by its path (lower-cased).
func yamlToJSON(data []byte) ([]byte, map[string]int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return []byte("null"), nil, nil // empty: the defaults
		}
		return nil, nil, fmt.Errorf("preset: config: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		if err != nil {
			return nil, nil, fmt.Errorf("preset: config: %w", err)
		}
		return nil, nil, fmt.Errorf("preset: config: line %d: a second YAML document; a config is one document", more.Line)
	}
	c := converter{lines: map[string]int{}, expanding: map[*yaml.Node]bool{}}
	if len(doc.Content) == 0 {
		return []byte("null"), c.lines, nil
	}
	if err := c.node(doc.Content[0], ""); err != nil {
		return nil, nil, err
	}
	return c.buf.Bytes(), c.lines, nil
}

// converter writes YAML nodes as JSON.
type converter struct {
	buf       bytes.Buffer
	lines     map[string]int
	nodes     int
	expanding map[*yaml.Node]bool // the aliased nodes being written, to refuse a cycle
}

// where names a node's place for an error: its path, or the top.
func where(path string) string {
	if path == "" {
		return "the top"
	}
	return strconv.Quote(path)
}

func (c *converter) node(n *yaml.Node, path string) error {
	if c.nodes++; c.nodes > maxYAMLNodes {
		return fmt.Errorf("preset: config: line %d: the document expands to more than %d values", n.Line, maxYAMLNodes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if c.expanding[n.Alias] {
			return fmt.Errorf("preset: config: line %d: alias *%s at %s refers to itself", n.Line, n.Value, where(path))
		}
		c.expanding[n.Alias] = true
		defer delete(c.expanding, n.Alias)
		return c.node(n.Alias, path)
	case yaml.MappingNode:
		if n.ShortTag() != "!!map" {
			return fmt.Errorf("preset: config: line %d: tag %s at %s is not supported", n.Line, n.Tag, where(path))
		}
		c.buf.WriteByte('{')
		seen := keys{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				return fmt.Errorf("preset: config: line %d: merge key << at %s is not supported; write the keys out", k.Line, where(path))
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return fmt.Errorf("preset: config: line %d: key %s at %s is not a string", k.Line, keyText(k), where(path))
			}
			if err := seen.add(path, k.Value, k.Line); err != nil {
				return err
			}
			p := keyPath(path, k.Value)
			if _, ok := c.lines[strings.ToLower(p)]; !ok {
				c.lines[strings.ToLower(p)] = k.Line
			}
			if i > 0 {
				c.buf.WriteByte(',')
			}
			writeString(&c.buf, k.Value)
			c.buf.WriteByte(':')
			if err := c.node(v, p); err != nil {
				return err
			}
		}
		c.buf.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		if n.ShortTag() != "!!seq" {
			return fmt.Errorf("preset: config: line %d: tag %s at %s is not supported", n.Line, n.Tag, where(path))
		}
		c.buf.WriteByte('[')
		for i, v := range n.Content {
			if i > 0 {
				c.buf.WriteByte(',')
			}
			if err := c.node(v, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		c.buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		return c.scalar(n, path)
	}
	return fmt.Errorf("preset: config: line %d: unexpected YAML node at %s", n.Line, where(path))
}

// scalar writes a scalar node as JSON: a string, a number, a boolean or
// null. YAML's infinities are written as the strings "inf" and "-inf"
// (JSON has no number for them; a rate accepts "inf"), NaN as "nan".
func (c *converter) scalar(n *yaml.Node, path string) error {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		writeString(&c.buf, n.Value)
		return nil
	case "!!null":
		c.buf.WriteString("null")
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("preset: config: line %d: %s at %s: %w", n.Line, n.Value, where(path), err)
	}
	switch v := v.(type) {
	case bool:
		c.buf.WriteString(strconv.FormatBool(v))
		return nil
	case int:
		c.buf.WriteString(strconv.Itoa(v))
		return nil
	case int64:
		c.buf.WriteString(strconv.FormatInt(v, 10))
		return nil
	case uint64:
		c.buf.WriteString(strconv.FormatUint(v, 10))
		return nil
	case float64:
		switch {
		case math.IsInf(v, 1):
			c.buf.WriteString(`"inf"`)
		case math.IsInf(v, -1):
			c.buf.WriteString(`"-inf"`)
		case math.IsNaN(v):
			c.buf.WriteString(`"nan"`)
		default:
			c.buf.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		return nil
	}
	return fmt.Errorf("preset: config: line %d: tag %s at %s is not supported", n.Line, n.Tag, where(path))
}

// keyText shows a key that is not a string, for an error.
func keyText(k *yaml.Node) string {
	if k.Kind == yaml.ScalarNode {
		return strconv.Quote(k.Value) + " (" + k.ShortTag() + ")"
	}
	return "of kind " + map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "sequence", yaml.AliasNode: "alias"}[k.Kind]
}

// writeString writes s as a JSON string.
func writeString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}
