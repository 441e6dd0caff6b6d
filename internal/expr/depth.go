package expr

import "fmt"

// tooDeep is the message for an expression deeper than MaxDepth.
var tooDeep = fmt.Sprintf("expression nested too deeply: more than %d levels "+
	"(a chain of operators such as a + b + c counts one level per operator; chains of AND and OR do not); "+
	"split it into several steps, e.g. withColumn", MaxDepth)

// tooDeepAt returns the source offset of the first node nested more than
// MaxDepth levels below root, or -1 when the tree is within the limit. It
// walks the tree with an explicit stack, so it is safe on any tree.
func tooDeepAt(root Node) int {
	type item struct {
		n     Node
		depth int
	}
	stack := []item{{root, 0}} // a lone column or literal is 0 levels deep
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.depth > MaxDepth {
			if b, ok := it.n.(*Binary); ok {
				return b.OpAt
			}
			return startPos(it.n)
		}
		eachChild(it.n, func(c Node) { stack = append(stack, item{c, it.depth + 1}) })
	}
	return -1
}

// eachChild calls f on every direct child of n that is present.
func eachChild(n Node, f func(Node)) {
	visit := func(c Node) {
		if c != nil {
			f(c)
		}
	}
	switch x := n.(type) {
	case *Alias:
		visit(x.X)
	case *Unary:
		visit(x.X)
	case *Binary:
		visit(x.L)
		visit(x.R)
	case *IsNull:
		visit(x.X)
	case *IsBool:
		visit(x.X)
	case *IsDistinct:
		visit(x.L)
		visit(x.R)
	case *In:
		visit(x.X)
		for _, e := range x.List {
			visit(e)
		}
	case *Between:
		visit(x.X)
		visit(x.Lo)
		visit(x.Hi)
	case *Like:
		visit(x.X)
		visit(x.Pattern)
	case *Case:
		visit(x.Operand)
		for _, w := range x.Whens {
			visit(w.Cond)
			visit(w.Then)
		}
		visit(x.Else)
	case *Cast:
		visit(x.X)
	case *Call:
		for _, a := range x.Args {
			visit(a)
		}
	case *Field:
		visit(x.X)
	case *Subscript:
		visit(x.X)
		visit(x.Key)
	}
}

// startPos is the offset where n's source text starts. It follows left
// operands in a loop, so a long operator chain costs no stack.
func startPos(n Node) int {
	for {
		switch x := n.(type) {
		case *Alias:
			n = x.X
		case *Binary:
			n = x.L
		case *IsNull:
			n = x.X
		case *IsBool:
			n = x.X
		case *IsDistinct:
			n = x.L
		case *In:
			n = x.X
		case *Between:
			n = x.X
		case *Like:
			n = x.X
		case *Field:
			n = x.X
		case *Subscript:
			n = x.X
		default:
			return n.Pos()
		}
	}
}
