package options

import (
	"sort"
	"strings"
)

// Suggest returns the candidate closest to word, for "did you mean X?"
// messages, or "" when none is close enough: the first of SuggestAll.
func Suggest(word string, candidates []string) string {
	if all := SuggestAll(word, candidates); len(all) > 0 {
		return all[0]
	}
	return ""
}

// SuggestAll returns the candidates close to word, closest first (ties in
// candidate order). Comparison ignores case; a candidate equal to word up
// to case always comes first. Close means an optimal-string-alignment
// distance (insertions, deletions, substitutions and adjacent
// transpositions) of at most max(1, len(word)/3); when no candidate is
// that close, the candidates that word (of at least 4 characters) is a
// prefix of are returned.
func SuggestAll(word string, candidates []string) []string {
	lw := []rune(strings.ToLower(word))
	limit := max(1, len(lw)/3)
	type hit struct {
		c    string
		d, i int
	}
	var hits []hit
	for i, c := range candidates {
		if c == "" {
			continue
		}
		if d := osaDistance(lw, []rune(strings.ToLower(c))); d <= limit {
			hits = append(hits, hit{c, d, i})
		}
	}
	if len(hits) > 0 {
		sort.SliceStable(hits, func(a, b int) bool { return hits[a].d < hits[b].d })
		out := make([]string, len(hits))
		for i, h := range hits {
			out[i] = h.c
		}
		return out
	}
	var out []string
	if len(lw) >= 4 {
		for _, c := range candidates {
			if c != "" && strings.HasPrefix(strings.ToLower(c), string(lw)) {
				out = append(out, c)
			}
		}
	}
	return out
}

// osaDistance is the optimal string alignment distance between a and b
// (Levenshtein plus transposition of adjacent runes).
func osaDistance(a, b []rune) int {
	// Three rows: two back (for transpositions), previous and current.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
