package broker

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestParseTopicSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    TopicSpec
		wantErr string // substring; "" = no error
	}{
		{in: "orders:4", want: TopicSpec{Name: "orders", Partitions: 4}},
		{in: "orders", want: TopicSpec{Name: "orders"}},
		{in: "  orders:1 ", want: TopicSpec{Name: "orders", Partitions: 1}},
		{in: "a.b_c-D9:10000", want: TopicSpec{Name: "a.b_c-D9", Partitions: 10000}},
		{in: strings.Repeat("x", 249), want: TopicSpec{Name: strings.Repeat("x", 249)}},
		{in: "", wantErr: "topic name is empty"},
		{in: ":4", wantErr: "topic name is empty"},
		{in: "orders:", wantErr: `partition count "" is not a whole number`},
		{in: "orders:x", wantErr: `partition count "x" is not a whole number`},
		{in: "orders:4.5", wantErr: "not a whole number"},
		{in: "orders:0", wantErr: "partition count 0 is out of range [1, 10000]"},
		{in: "orders:-2", wantErr: "out of range"},
		{in: "orders:10001", wantErr: "out of range"},
		{in: "orders:99999999999", wantErr: "not a whole number"},
		{in: "orders:4:5", wantErr: `partition count "4:5" is not a whole number`},
		{in: "or ders:4", wantErr: `has the character ' '`},
		{in: "orders/x", wantErr: `has the character '/'`},
		{in: ".", wantErr: `topic name "." is not allowed`},
		{in: "..:3", wantErr: `topic name ".." is not allowed`},
		{in: strings.Repeat("x", 250), wantErr: "250 characters long, the limit is 249"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTopicSpec(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTopicSpec(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTopicSpec(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseTopicSpec(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseTopicSpecs(t *testing.T) {
	tests := []struct {
		in      string
		want    []TopicSpec
		wantErr string
	}{
		{in: "orders:4,payments", want: []TopicSpec{{"orders", 4}, {"payments", 0}}},
		{in: "a", want: []TopicSpec{{"a", 0}}},
		{in: "a,,b", wantErr: "topic name is empty"},
		{in: "a:2,a:3", wantErr: `topic "a" is listed twice`},
		{in: "a,b:0", wantErr: "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTopicSpecs(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTopicSpecs(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTopicSpecs(%q): %v", tc.in, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ParseTopicSpecs(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("ParseTopicSpecs(%q)[%d] = %+v, want %+v", tc.in, i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestTopicSpecString(t *testing.T) {
	for _, tc := range []struct {
		spec TopicSpec
		want string
	}{
		{TopicSpec{"orders", 4}, "orders:4"},
		{TopicSpec{"orders", 0}, "orders"},
	} {
		if got := tc.spec.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func FuzzParseTopicSpec(f *testing.F) {
	for _, s := range []string{"orders:4", "orders", "", ":", "a:0", "a:-1", "x.y_z-1:10000", "..", "a:1:2", " b:3 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseTopicSpec(s)
		if err != nil {
			return
		}
		if verr := ValidateTopicName(spec.Name); verr != nil {
			t.Fatalf("ParseTopicSpec(%q) accepted invalid name %q: %v", s, spec.Name, verr)
		}
		if spec.Partitions < 0 || spec.Partitions > maxPartitions {
			t.Fatalf("ParseTopicSpec(%q) accepted partitions %d", s, spec.Partitions)
		}
		// The canonical form parses back to the same spec.
		again, err := ParseTopicSpec(spec.String())
		if err != nil || again != spec {
			t.Fatalf("round trip of %q via %q = %+v, %v; want %+v", s, spec.String(), again, err, spec)
		}
	})
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort int
		wantErr  string
	}{
		{in: "", wantHost: "127.0.0.1", wantPort: 0},
		{in: "127.0.0.1:9092", wantHost: "127.0.0.1", wantPort: 9092},
		{in: ":9093", wantHost: "127.0.0.1", wantPort: 9093},
		{in: "localhost:0", wantHost: "localhost", wantPort: 0},
		{in: "[::1]:9092", wantHost: "::1", wantPort: 9092},
		{in: "0.0.0.0:9092", wantErr: "must be a specific address"},
		{in: "[::]:9092", wantErr: "must be a specific address"},
		{in: "127.0.0.1", wantErr: "missing port"},
		{in: "127.0.0.1:http", wantErr: `port "http" is not a number`},
		{in: "127.0.0.1:65536", wantErr: "from 0 to 65535"},
		{in: "127.0.0.1:-1", wantErr: "from 0 to 65535"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			host, port, err := parseListen(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseListen(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseListen(%q): %v", tc.in, err)
			}
			if host != tc.wantHost || port != tc.wantPort {
				t.Fatalf("parseListen(%q) = %q, %d; want %q, %d", tc.in, host, port, tc.wantHost, tc.wantPort)
			}
		})
	}
}

func TestSlogLoggerLevels(t *testing.T) {
	var buf strings.Builder
	l := slogLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))}
	l.Logf(kfake.LogLevelError, "e %d", 1)
	l.Logf(kfake.LogLevelWarn, "w %s", "x")
	l.Logf(kfake.LogLevelInfo, "i")
	l.Logf(kfake.LogLevelDebug, "d")
	l.Logf(kfake.LogLevelNone, "none")
	want := `level=ERROR msg="e 1" component=kfake kfake_level=ERR
level=WARN msg="w x" component=kfake kfake_level=WRN
level=DEBUG msg=i component=kfake kfake_level=INF
level=DEBUG msg=d component=kfake kfake_level=DBG
`
	if buf.String() != want {
		t.Fatalf("log =\n%s\nwant\n%s", buf.String(), want)
	}

	// Below the handler's level nothing is formatted or written.
	buf.Reset()
	quiet := slogLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	quiet.Logf(kfake.LogLevelInfo, "hidden")
	quiet.Logf(kfake.LogLevelDebug, "hidden")
	if buf.Len() != 0 {
		t.Fatalf("quiet logger wrote %q", buf.String())
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
