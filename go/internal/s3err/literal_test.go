package s3err

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// constructors are the functions that take a Code, and where it is.
var constructors = map[string]int{"New": 0, "Newf": 0, "Wrap": 1, "Wrapf": 1}

// No Go file of the proxy makes an S3 error from a literal code, a
// conversion to Code or an Error literal: every error is one of the named
// codes, made by a constructor, so none can fall outside the table (and
// become a 500 nobody meant).
func TestNoCodeFromALiteral(t *testing.T) {
	root := filepath.Join("..", "..") // the module: go/
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inS3err := file.Name.Name == "s3err"
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.CompositeLit); ok && !inS3err && s3errName(lit.Type, false) == "Error" {
				t.Errorf("%s: an s3err.Error built field by field", fset.Position(lit.Pos()))
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			name := s3errName(call.Fun, inS3err)
			if name == "Code" && filepath.Base(path) != "codes.go" {
				t.Errorf("%s: a Code made by conversion", fset.Position(call.Pos()))
			}
			if i, ok := constructors[name]; ok && i < len(call.Args) {
				if _, literal := call.Args[i].(*ast.BasicLit); literal {
					t.Errorf("%s: s3err.%s with a literal code", fset.Position(call.Pos()), name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// s3errName is the name fun calls in package s3err ("New" for s3err.New,
// or New inside the package), or "".
func s3errName(fun ast.Expr, inS3err bool) string {
	switch f := fun.(type) {
	case *ast.SelectorExpr:
		if pkg, ok := f.X.(*ast.Ident); ok && pkg.Name == "s3err" {
			return f.Sel.Name
		}
	case *ast.Ident:
		if inS3err {
			return f.Name
		}
	}
	return ""
}
