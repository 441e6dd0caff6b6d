package expr

// Columns returns the column names an expression reads, in order of first
// appearance, and whether it reads every column (a `*`). A function called
// without parentheses (current_timestamp) counts as a column reference,
// since a column of that name wins when it exists.
func Columns(n Node) (names []string, star bool) {
	seen := map[string]bool{}
	var walk func(Node)
	walk = func(n Node) {
		switch x := n.(type) {
		case nil:
		case *Ident:
			if !seen[x.Name] {
				seen[x.Name] = true
				names = append(names, x.Name)
			}
		case *Star:
			star = true
		case *Alias:
			walk(x.X)
		case *Unary:
			walk(x.X)
		case *Binary:
			walk(x.L)
			walk(x.R)
		case *IsNull:
			walk(x.X)
		case *IsBool:
			walk(x.X)
		case *IsDistinct:
			walk(x.L)
			walk(x.R)
		case *In:
			walk(x.X)
			for _, e := range x.List {
				walk(e)
			}
		case *Between:
			walk(x.X)
			walk(x.Lo)
			walk(x.Hi)
		case *Like:
			walk(x.X)
			walk(x.Pattern)
		case *Case:
			walk(x.Operand)
			for _, w := range x.Whens {
				walk(w.Cond)
				walk(w.Then)
			}
			walk(x.Else)
		case *Cast:
			walk(x.X)
		case *Call:
			if x.NoParens && !seen[x.Name] {
				seen[x.Name] = true
				names = append(names, x.Name)
			}
			for _, a := range x.Args {
				walk(a)
			}
		case *Field:
			walk(x.X)
		case *Subscript:
			walk(x.X)
			walk(x.Key)
		case *Literal:
		default:
			star = true // an unknown node: be safe, read everything
		}
	}
	walk(n)
	return names, star
}
