package options

import "strings"

// Suggest returns the candidate closest to word, for "did you mean X?"
// messages, or "" when none is close enough. Comparison ignores case; a
// candidate equal to word up to case always wins. Otherwise the closest
// candidate by optimal-string-alignment distance (insertions, deletions,
// substitutions and adjacent transpositions) is returned if the distance is
// at most max(1, len(word)/3); failing that, a candidate that word (of at
// least 4 characters) is a prefix of. Ties go to the earlier candidate.
func Suggest(word string, candidates []string) string {
	lw := []rune(strings.ToLower(word))
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == "" {
			continue
		}
		lc := []rune(strings.ToLower(c))
		d := osaDistance(lw, lc)
		if d == 0 {
			return c
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 && bestDist <= max(1, len(lw)/3) {
		return best
	}
	if len(lw) >= 4 {
		for _, c := range candidates {
			if c != "" && strings.HasPrefix(strings.ToLower(c), string(lw)) {
				return c
			}
		}
	}
	return ""
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
