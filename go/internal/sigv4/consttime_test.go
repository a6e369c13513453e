package sigv4

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The packages whose comparisons of signatures, secrets, MACs and digests
// must take constant time: this one (request, presigned and chunk
// signatures), awschunked (chunk and trailer signatures, trailer
// checksums) and integrity (x-amz-content-sha256 digests).
var constantTimeDirs = []string{".", "../awschunked", "../integrity"}

// TestConstantTimeComparisons parses the non-test sources of those
// packages and fails on every comparison of a signature-, secret-, MAC- or
// digest-derived value by ==, !=, a switch, or a variable-time function
// (bytes.Equal, strings.EqualFold, ...) instead of hmac.Equal or
// subtle.ConstantTimeCompare. Comparing such a value with a constant
// (nil, "", a named constant) or comparing its length is allowed: neither
// tells an attacker anything about the value.
func TestConstantTimeComparisons(t *testing.T) {
	for _, dir := range constantTimeDirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatalf("resolve %s: %v", dir, err)
		}
		t.Run(filepath.Base(abs), func(t *testing.T) {
			findings, files, err := scanConstantTime(dir)
			if err != nil {
				t.Fatalf("scan %s: %v", dir, err)
			}
			if files == 0 {
				t.Fatalf("scan %s: no Go source files (moved?)", dir)
			}
			for _, f := range findings {
				t.Errorf("%s", f)
			}
		})
	}
}

// TestConstantTimeCheckerFindsComparisons makes sure the check above can
// fail: a source with known variable-time comparisons is flagged exactly
// there, and its constant-time and harmless comparisons are not.
func TestConstantTimeCheckerFindsComparisons(t *testing.T) {
	const src = `package x

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

const public = "p"

func computeSignature(secret string) string { return secret }

func f(sig, secret string, mac []byte, body []byte, a, b string) bool {
	want := computeSignature(secret)
	if sig == want { // FLAG
		return true
	}
	if bytes.Equal(mac, []byte(sig)) { // FLAG
		return true
	}
	if strings.EqualFold(want, a) { // FLAG
		return true
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != b { // FLAG
		return true
	}
	switch want {
	case a: // FLAG
	case public:
	}
	if hmac.Equal([]byte(sig), []byte(want)) || subtle.ConstantTimeCompare(mac, mac) == 1 {
		return true
	}
	if sig == "" || len(sig) != 64 || sig == public || mac == nil || a == b {
		return true
	}
	return false
}
`
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	findings := checkConstantTime(fset, []*ast.File{file})
	var want []int
	for i, line := range strings.Split(src, "\n") {
		if strings.Contains(line, "// FLAG") {
			want = append(want, i+1)
		}
	}
	var got []int
	for _, f := range findings {
		got = append(got, f.pos.Line)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("flagged lines %v, want %v:\n%s", got, want, strings.Join(findingText(findings), "\n"))
	}
}

type ctFinding struct {
	pos  token.Position
	what string
}

func (f ctFinding) String() string { return fmt.Sprintf("%s: %s", f.pos, f.what) }

func findingText(fs []ctFinding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return out
}

// scanConstantTime checks the non-test Go files of dir.
func scanConstantTime(dir string) ([]ctFinding, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("read dir: %w", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("parse %s: %w", name, err)
		}
		files = append(files, f)
	}
	return checkConstantTime(fset, files), len(files), nil
}

// Names (identifiers, fields, called functions) that mark a value as
// derived from a secret or a signature, or as a digest of data.
var (
	secretName = regexp.MustCompile(`(?i)signature|^sig$|^sig[A-Z_]|[a-z]Sig$|secret|hmac|^mac$|Mac$|signingkey|^sign$|^sign[A-Z]|derive`)
	digestName = regexp.MustCompile(`(?i)digest|checksum|^sum$|^sum[0-9A-Z]|Sum$|Sum[0-9]+$`)
)

// variableTimeFuncs compare their two arguments in time that depends on
// where they first differ.
var variableTimeFuncs = map[string]bool{
	"bytes.Equal": true, "bytes.Compare": true, "bytes.EqualFold": true, "bytes.HasPrefix": true, "bytes.HasSuffix": true,
	"strings.Compare": true, "strings.EqualFold": true, "strings.HasPrefix": true, "strings.HasSuffix": true,
	"reflect.DeepEqual": true, "slices.Equal": true, "slices.Compare": true,
}

type ctChecker struct {
	fset     *token.FileSet
	consts   map[string]bool // package-level constants
	imports  map[string]bool // package names imported by the current file
	tainted  map[string]string
	findings []ctFinding
}

func checkConstantTime(fset *token.FileSet, files []*ast.File) []ctFinding {
	c := &ctChecker{fset: fset, consts: map[string]bool{}}
	for _, f := range files {
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, spec := range g.Specs {
					for _, name := range spec.(*ast.ValueSpec).Names {
						c.consts[name.Name] = true
					}
				}
			}
		}
	}
	for _, f := range files {
		c.imports = map[string]bool{}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			name := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			c.imports[name] = true
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			c.tainted = map[string]string{}
			c.taint(fn.Body)
			c.inspect(fn.Body)
		}
	}
	sort.Slice(c.findings, func(i, j int) bool {
		a, b := c.findings[i].pos, c.findings[j].pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Offset < b.Offset
	})
	return c.findings
}

// taint marks local variables assigned from sensitive values, until no
// more change (a := sig; b := a).
func (c *ctChecker) taint(body *ast.BlockStmt) {
	for changed := true; changed; {
		changed = false
		mark := func(lhs ast.Expr, rhs ast.Expr) {
			id, ok := lhs.(*ast.Ident)
			if !ok || id.Name == "_" || c.tainted[id.Name] != "" {
				return
			}
			if class := c.sensitive(rhs); class != "" {
				c.tainted[id.Name] = class
				changed = true
			}
		}
		ast.Inspect(body, func(n ast.Node) bool {
			switch s := n.(type) {
			case *ast.AssignStmt:
				if len(s.Lhs) == len(s.Rhs) {
					for i := range s.Lhs {
						mark(s.Lhs[i], s.Rhs[i])
					}
				}
			case *ast.ValueSpec:
				if len(s.Names) == len(s.Values) {
					for i := range s.Names {
						mark(s.Names[i], s.Values[i])
					}
				}
			case *ast.RangeStmt:
				if class := c.sensitive(s.X); class != "" && s.Value != nil {
					mark(s.Value, s.X)
				}
			}
			return true
		})
	}
}

func (c *ctChecker) inspect(body *ast.BlockStmt) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch e := n.(type) {
		case *ast.BinaryExpr:
			if e.Op == token.EQL || e.Op == token.NEQ {
				c.pair(e, e.X, e.Y, "compared with "+e.Op.String())
			}
		case *ast.CallExpr:
			if name := c.funcName(e.Fun); variableTimeFuncs[name] && len(e.Args) == 2 {
				c.pair(e, e.Args[0], e.Args[1], "compared with "+name)
			}
		case *ast.SwitchStmt:
			if e.Tag == nil {
				break
			}
			class := c.sensitive(e.Tag)
			if class == "" {
				break
			}
			for _, stmt := range e.Body.List {
				for _, v := range stmt.(*ast.CaseClause).List {
					if !c.public(v) {
						c.report(v, fmt.Sprintf("%s value %s compared by a switch case %s", class, c.text(e.Tag), c.text(v)))
					}
				}
			}
		}
		return true
	})
}

func (c *ctChecker) pair(at ast.Node, x, y ast.Expr, how string) {
	if c.public(x) || c.public(y) {
		return
	}
	class := c.sensitive(x)
	if class == "" {
		class = c.sensitive(y)
	}
	if class == "" {
		return
	}
	c.report(at, fmt.Sprintf("%s value %s; use hmac.Equal or subtle.ConstantTimeCompare", class, how+": "+c.text(at)))
}

func (c *ctChecker) report(at ast.Node, what string) {
	c.findings = append(c.findings, ctFinding{pos: c.fset.Position(at.Pos()), what: what})
}

// sensitive returns "secret-derived" or "digest" when e mentions such a
// value, else "". Lengths (len, cap) tell nothing about the bytes.
func (c *ctChecker) sensitive(e ast.Expr) string {
	class := ""
	ast.Inspect(e, func(n ast.Node) bool {
		if class == "secret-derived" {
			return false
		}
		switch x := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CallExpr:
			if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "len" || id.Name == "cap") {
				return false
			}
		case *ast.Ident:
			class = c.worse(class, c.classOf(x.Name))
			if t := c.tainted[x.Name]; t != "" {
				class = c.worse(class, t)
			}
		case *ast.SelectorExpr:
			class = c.worse(class, c.classOf(x.Sel.Name))
		}
		return true
	})
	return class
}

func (c *ctChecker) classOf(name string) string {
	switch {
	case secretName.MatchString(name):
		return "secret-derived"
	case digestName.MatchString(name):
		return "digest"
	}
	return ""
}

func (c *ctChecker) worse(a, b string) string {
	if a == "secret-derived" || b == "secret-derived" {
		return "secret-derived"
	}
	if a != "" {
		return a
	}
	return b
}

// public reports whether e is a constant or a length: comparing a secret
// with it leaks nothing.
func (c *ctChecker) public(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return x.Name == "nil" || x.Name == "true" || x.Name == "false" || c.consts[x.Name]
	case *ast.SelectorExpr:
		// pkg.Name: another package's constant or sentinel (io.EOF).
		id, ok := x.X.(*ast.Ident)
		return ok && c.imports[id.Name] && c.tainted[id.Name] == ""
	case *ast.ParenExpr:
		return c.public(x.X)
	case *ast.UnaryExpr:
		return c.public(x.X)
	case *ast.BinaryExpr:
		return c.public(x.X) && c.public(x.Y)
	case *ast.CompositeLit:
		for _, elt := range x.Elts {
			if kv, ok := elt.(*ast.KeyValueExpr); ok {
				elt = kv.Value
			}
			if !c.public(elt) {
				return false
			}
		}
		return true
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "len" || id.Name == "cap") {
			return true
		}
		// A conversion of a constant, such as []byte("x").
		if _, ok := x.Fun.(*ast.ArrayType); ok && len(x.Args) == 1 {
			return c.public(x.Args[0])
		}
	}
	return false
}

func (c *ctChecker) funcName(fun ast.Expr) string {
	if sel, ok := fun.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok && c.imports[id.Name] {
			return id.Name + "." + sel.Sel.Name
		}
	}
	return ""
}

func (c *ctChecker) text(n ast.Node) string {
	var b bytes.Buffer
	if err := printer.Fprint(&b, c.fset, n); err != nil {
		return fmt.Sprintf("<%T>", n)
	}
	return b.String()
}
