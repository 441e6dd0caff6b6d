package options

import "testing"

func TestSuggest(t *testing.T) {
	keys := []string{"name", "source", "transform", "sink", "trigger", "options", "deadLetter", "checkpointLocation"}
	tests := []struct {
		word       string
		candidates []string
		want       string
	}{
		{"tranform", keys, "transform"},
		{"trasnform", keys, "transform"}, // transposition counts once
		{"sourc", keys, "source"},
		{"SINK", keys, "sink"},
		{"deadletter", keys, "deadLetter"},
		{"nme", keys, "name"},
		{"checkpoint", keys, "checkpointLocation"},
		{"trigers", keys, "trigger"},
		{"banana", keys, ""},
		{"x", keys, ""},
		{"", keys, ""},
		{"sink", nil, ""},
		{"maxOffsetPerTrigger", []string{"minOffsetsPerTrigger", "maxOffsetsPerTrigger"}, "maxOffsetsPerTrigger"},
		{"ab", []string{"ba", "abc"}, "ba"}, // tie at distance 1: earlier candidate wins
		{"apend", []string{"append", "update", "complete"}, "append"},
		{"überall", []string{"uberall"}, "uberall"},
	}
	for _, tt := range tests {
		if got := Suggest(tt.word, tt.candidates); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestOSADistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"ab", "ba", 1},
		{"ca", "abc", 3}, // OSA, unlike full Damerau-Levenshtein (2)
		{"format", "fromat", 1},
		{"same", "same", 0},
	}
	for _, tt := range tests {
		if got := osaDistance([]rune(tt.a), []rune(tt.b)); got != tt.want {
			t.Errorf("osaDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
