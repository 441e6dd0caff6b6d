package sparktext

import "testing"

// FuzzParseISOZ checks ParseTimestamp's fast path against its general
// path: whatever text the fast path accepts, the general path parses to
// the same instant.
func FuzzParseISOZ(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T13:00:00.000Z", "2026-11-25 13:00:00Z", "2024-02-29T23:59:59.123456789123Z",
		"2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T13:00:00.Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2026-11-25T13:00:00.000+01:00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseISOZ(b)
		if !ok {
			return
		}
		slow, ok := parseTimestamp(b)
		if !ok || slow != fast {
			t.Fatalf("%q: fast path %d, general path %d (ok %v)", b, fast, slow, ok)
		}
	})
}

// The fast path takes the JSON producers' form, and leaves what it does
// not read exactly (other zones, a fraction without digits, invalid
// dates) to the general path.
func TestParseISOZ(t *testing.T) {
	for s, want := range map[string]bool{
		"2026-11-25T13:00:00.000Z":        true,
		"2026-11-25 13:00:00Z":            true,
		"2024-02-29T23:59:59.1234567891Z": true,
		"2023-02-29T00:00:00Z":            false,
		"2026-11-25T13:00:00.Z":           false,
		"2026-11-25T13:00:00.000+01:00":   false,
		" 2026-11-25T13:00:00Z":           false,
		"2026-11-25T13:00:60Z":            false,
	} {
		v, ok := parseISOZ([]byte(s))
		if ok != want {
			t.Errorf("%q: fast path ok %v, want %v", s, ok, want)
		}
		if w, wok := ParseTimestamp([]byte(s)); ok && (!wok || w != v) {
			t.Errorf("%q: fast path %d, ParseTimestamp %d", s, v, w)
		}
	}
	if v, _ := parseISOZ([]byte("2026-11-25T13:00:00.123456789Z")); v != 1795611600123456 {
		t.Errorf("got %d", v)
	}
}
