package kafkaauth_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
)

func TestParseJAAS(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		module string
		flag   string
		opts   map[string]string
		mech   string
	}{
		{"plain", `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cret";`,
			kafkaauth.PlainLoginModule, "required", map[string]string{"username": "alice", "password": "s3cret"}, "PLAIN"},
		{"databricks shaded", `kafkashaded.org.apache.kafka.common.security.plain.PlainLoginModule required username="$ConnectionString" password="Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=abc+/=;EntityPath=hub";`,
			"kafkashaded." + kafkaauth.PlainLoginModule, "required",
			map[string]string{"username": "$ConnectionString", "password": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=abc+/=;EntityPath=hub"}, "PLAIN"},
		{"scram, bare values, no final semicolon", "org.apache.kafka.common.security.scram.ScramLoginModule  REQUIRED\n username=bob\tpassword=pw-1",
			kafkaauth.ScramLoginModule, "required", map[string]string{"username": "bob", "password": "pw-1"}, "SCRAM"},
		{"escapes and spaces", `org.apache.kafka.common.security.plain.PlainLoginModule optional username = "a b" password="q\"uo\\te;";`,
			kafkaauth.PlainLoginModule, "optional", map[string]string{"username": "a b", "password": `q"uo\te;`}, "PLAIN"},
		{"comments", "/* saved */ org.apache.kafka.common.security.scram.ScramLoginModule sufficient // ok\n username=\"u\" tokenauth=true password=\"pw9\";",
			kafkaauth.ScramLoginModule, "sufficient", map[string]string{"username": "u", "password": "pw9", "tokenauth": "true"}, "SCRAM"},
		{"unknown module parses", `com.example.Custom requisite a="1";`, "com.example.Custom", "requisite", map[string]string{"a": "1"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := kafkaauth.ParseJAAS(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if j.Module != c.module || j.Flag != c.flag || j.Mechanism() != c.mech {
				t.Fatalf("got module %q flag %q mechanism %q, want %q %q %q", j.Module, j.Flag, j.Mechanism(), c.module, c.flag, c.mech)
			}
			if len(j.Options) != len(c.opts) {
				t.Fatalf("options %v, want %v", j.Options, c.opts)
			}
			for k, v := range c.opts {
				if j.Options[k] != v {
					t.Errorf("option %s = %q, want %q", k, j.Options[k], v)
				}
			}
			// String never shows values; Format round-trips.
			if pw := c.opts["password"]; pw != "" && strings.Contains(fmt.Sprintf("%v %+v %#v", j, j, j), pw) {
				t.Errorf("String() %q shows the password", j.String())
			}
			back, err := kafkaauth.ParseJAAS(j.Format())
			if err != nil {
				t.Fatalf("reparse Format(): %v", err)
			}
			if back.String() != j.String() || back.Format() != j.Format() {
				t.Errorf("Format round trip changed %q into %q", j.Format(), back.Format())
			}
		})
	}
}

func TestParseJAASErrors(t *testing.T) {
	const secret = "Hunter2+/Secret="
	cases := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "  ", "empty"},
		{"connection string pasted instead", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=" + secret, "login module class"},
		{"missing flag", `org.apache.kafka.common.security.plain.PlainLoginModule username="u" password="` + secret + `";`, "control flag"},
		{"unclosed quote", `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="` + secret, "not closed"},
		{"missing equals", `org.apache.kafka.common.security.plain.PlainLoginModule required username "u" password="` + secret + `";`, "expected '='"},
		{"bare value with equals", `org.apache.kafka.common.security.plain.PlainLoginModule required password==` + secret + `;`, "quote values"},
		{"two modules", `a.B required x="1"; c.D required password="` + secret + `";`, "2 login modules"},
		{"duplicate option", `a.B required password="1" password="` + secret + `";`, `option "password" is set twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kafkaauth.ParseJAAS(c.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Hunter2") {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
}

// FuzzParseJAAS checks that parsing never panics, that what parses
// round-trips through Format, and that no error shows a password.
func FuzzParseJAAS(f *testing.F) {
	f.Add(`org.apache.kafka.common.security.plain.PlainLoginModule required username="`, "abc", `";`)
	f.Add(`x.Y required password=`, "q", ` username=u`)
	f.Add(`/* c */ a.B optional k="v" password="`, `\"`, `"`)
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, prefix, pw, suffix string) {
		secret := "S3cr/" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, pw) + "+="
		in := prefix + secret + suffix
		j, err := kafkaauth.ParseJAAS(in)
		if err != nil {
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "S3cr/") {
				t.Fatalf("error %q shows the secret", err)
			}
			return
		}
		if strings.Contains(j.String(), secret) && !strings.Contains(j.Module, "S3cr/") {
			t.Fatalf("String() %q shows a value", j.String())
		}
		back, err := kafkaauth.ParseJAAS(j.Format())
		if err != nil {
			t.Fatalf("Format() output %q does not parse: %v", j.Format(), err)
		}
		if back.Format() != j.Format() {
			t.Fatalf("round trip: %q then %q", j.Format(), back.Format())
		}
	})
}
