package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// Properties no functional test can see: a digest comparison that leaks
// timing, or pooled memory that keeps a key, would still verify keys
// correctly. These tests fail if the code stops doing what protects them.

// TestVerifyConstantTime: Verify compares digests with
// subtle.ConstantTimeCompare, and nothing in hash.go compares byte slices or
// digests another way (bytes.Equal, ==, !=).
func TestVerifyConstantTime(t *testing.T) {
	f := parseFile(t, "hash.go")
	verify := findFunc(t, f, "Verify")
	calls := 0
	ast.Inspect(verify, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && selector(c.Fun) == "subtle.ConstantTimeCompare" {
			calls++
		}
		return true
	})
	if calls != 1 {
		t.Errorf("Verify calls subtle.ConstantTimeCompare %d times, want 1", calls)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if s := selector(n.Fun); s == "bytes.Equal" || s == "bytes.Compare" || s == "reflect.DeepEqual" {
				t.Errorf("hash.go calls %s at %s: compare digests with subtle.ConstantTimeCompare", s, pos(f, n))
			}
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && (mentionsSum(n.X) || mentionsSum(n.Y)) &&
				!isConstantTimeCall(n.X) && !isConstantTimeCall(n.Y) {
				t.Errorf("hash.go compares a digest with %s at %s: use subtle.ConstantTimeCompare", n.Op, pos(f, n))
			}
		}
		return true
	})
}

// TestPooledKeyMemoryWiped: the pooled state a key is copied into is all
// zeros after hashing, for every key length; and sum() wipes buf on every
// path that copied into it.
func TestPooledKeyMemoryWiped(t *testing.T) {
	for _, n := range []int{1, 53, 255, 256, 257, 600} {
		s := new(sha256State)
		key := strings.Repeat("k", n)
		s.sum(key)
		for i, b := range s.buf {
			if b != 0 {
				t.Fatalf("after hashing a %d-byte key, pooled buf[%d] = %q: the key stays in pooled memory", n, i, b)
			}
		}
	}
	f := parseFile(t, "hash.go")
	sum := findMethod(t, f, "sha256State", "sum")
	copies, clears := 0, 0
	ast.Inspect(sum, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && len(c.Args) > 0 {
			switch id, _ := c.Fun.(*ast.Ident); {
			case id != nil && id.Name == "copy" && strings.HasPrefix(exprString(c.Args[0]), "s.buf"):
				copies++
			case id != nil && id.Name == "clear" && strings.HasPrefix(exprString(c.Args[0]), "s.buf"):
				clears++
			}
		}
		return true
	})
	if copies == 0 || clears < copies {
		t.Errorf("sha256State.sum copies a key into s.buf %d times and clears it %d times: every copy needs its clear", copies, clears)
	}
}

func parseFile(t *testing.T, name string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func findFunc(t *testing.T, f *ast.File, name string) *ast.FuncDecl {
	t.Helper()
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name {
			return fd
		}
	}
	t.Fatalf("no func %s", name)
	return nil
}

func findMethod(t *testing.T, f *ast.File, recv, name string) *ast.FuncDecl {
	t.Helper()
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != name || fd.Recv == nil || len(fd.Recv.List) == 0 {
			continue
		}
		if strings.Contains(exprString(fd.Recv.List[0].Type), recv) {
			return fd
		}
	}
	t.Fatalf("no method %s.%s", recv, name)
	return nil
}

func selector(e ast.Expr) string {
	if s, ok := e.(*ast.SelectorExpr); ok {
		if x, ok := s.X.(*ast.Ident); ok {
			return x.Name + "." + s.Sel.Name
		}
	}
	return ""
}

func mentionsSum(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok && s.Sel.Name == "Sum" {
			found = true
		}
		return true
	})
	return found
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.SliceExpr:
		return exprString(e.X)
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	}
	return ""
}

// isConstantTimeCall: e is subtle.ConstantTimeCompare(...) (its result is
// compared with 1).
func isConstantTimeCall(e ast.Expr) bool {
	c, ok := e.(*ast.CallExpr)
	return ok && selector(c.Fun) == "subtle.ConstantTimeCompare"
}

// pos is n's place as a byte offset in the file.
func pos(_ *ast.File, n ast.Node) string { return "byte " + strconv.Itoa(int(n.Pos())-1) }
