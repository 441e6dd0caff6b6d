package sluice

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// TestPublicAPI reads the package's own source: no exported identifier
// may mention an internal package's type (in a signature, a field, an
// alias), and every exported identifier has a doc comment, so that
// `go doc github.com/sluice-stream/sluice` is a complete manual.
func TestPublicAPI(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pkg := pkgs["sluice"]
	if pkg == nil || len(pkg.Files) == 0 {
		t.Fatal("package sluice not found")
	}
	exported := 0
	for name, f := range pkg.Files {
		internal := map[string]string{} // local name → import path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			if strings.Contains(path, "/internal/") {
				internal[local] = path
			}
		}
		// leaks reports internal types used in a type expression.
		leaks := func(what string, e ast.Expr) {
			if e == nil {
				return
			}
			ast.Inspect(e, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && internal[id.Name] != "" {
						t.Errorf("%s: %s exposes %s.%s (package %s)", name, what, id.Name, sel.Sel.Name, internal[id.Name])
					}
				}
				if st, ok := n.(*ast.StructType); ok {
					for _, fl := range st.Fields.List {
						if len(fl.Names) > 0 && !fl.Names[0].IsExported() {
							continue // unexported fields are not API
						}
						ast.Inspect(fl.Type, func(m ast.Node) bool {
							if sel, ok := m.(*ast.SelectorExpr); ok {
								if id, ok := sel.X.(*ast.Ident); ok && internal[id.Name] != "" {
									t.Errorf("%s: a field of %s exposes %s.%s", name, what, id.Name, sel.Sel.Name)
								}
							}
							return true
						})
					}
					return false
				}
				return true
			})
		}
		undocumented := func(what string, docs ...*ast.CommentGroup) {
			exported++
			for _, d := range docs {
				if d != nil && strings.TrimSpace(d.Text()) != "" {
					return
				}
			}
			t.Errorf("%s: exported %s has no doc comment", name, what)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				what := d.Name.Name
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					id, ok := recv.(*ast.Ident)
					if !ok || !id.IsExported() {
						continue
					}
					what = id.Name + "." + what
				}
				undocumented(what, d.Doc)
				leaks(what, d.Type)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							undocumented(s.Name.Name, s.Doc, d.Doc)
							leaks(s.Name.Name, s.Type)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								undocumented(n.Name, s.Doc, d.Doc)
								leaks(n.Name, s.Type)
							}
						}
						if d.Tok == token.VAR {
							for _, n := range s.Names {
								if n.IsExported() {
									t.Errorf("%s: exported variable %s can be changed by any user; make it a function", name, n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	if exported < 40 {
		t.Errorf("only %d exported identifiers seen; is the parse right?", exported)
	}
}
