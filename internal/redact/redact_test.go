package redact

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestIsSecretOption(t *testing.T) {
	for name, want := range map[string]bool{
		"kafka.sasl.jaas.config":                                       true,
		"fs.azure.account.key.acct.dfs.core.windows.net":               true,
		"spark.hadoop.fs.azure.account.key.acct.blob.core.windows.net": true,
		"fs.azure.sas.fixed.token.acct.dfs.core.windows.net":           true,
		"fs.azure.sas.cont.acct.blob.core.windows.net":                 true,
		"fs.s3a.access.key":                                            true,
		"fs.s3a.secret.key":                                            true,
		"fs.s3a.session.token":                                         true,
		"fs.s3a.bucket.b.secret.key":                                   true,
		"fs.s3a.endpoint":                                              false,
		"fs.s3a.path.style.access":                                     false,
		"kafka.sasl.mechanism":                                         false,
		"sluice.storage.azure.endpoint":                                false,
		"path":                                                         false,
	} {
		if got := IsSecretOption(name); got != want {
			t.Errorf("IsSecretOption(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTextAndScrubber(t *testing.T) {
	conn := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFl==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
	if got := Text(conn); strings.Contains(got, "Eby8vdM02xNOcqFl") || !strings.Contains(got, "AccountName=devstoreaccount1") {
		t.Errorf("Text(connection string) = %q", got)
	}
	url := "PUT https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123&x=1 and https://a.blob.core.windows.net/c/b?sv=2020&sig=ZZZZsecret%3D"
	if got := Text(url); strings.Contains(got, "abcdef0123") || strings.Contains(got, "ZZZZsecret") {
		t.Errorf("Text(url) = %q", got)
	}
	s := NewScrubber("wJalrXUtnFEMI/K7MDENG", "ab") // "ab" is too short to scrub
	err := s.Err(&fs.PathError{Op: "open", Path: "key wJalrXUtnFEMI/K7MDENG ab", Err: fs.ErrNotExist})
	if strings.Contains(err.Error(), "wJalrXUtnFEMI") || !strings.Contains(err.Error(), " ab") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Err = %v (errors.Is ErrNotExist: %v)", err, errors.Is(err, fs.ErrNotExist))
	}
	if s.With("another-secret").Text("another-secret") != Mark {
		t.Error("With did not add the secret")
	}
	if s.Err(nil) != nil {
		t.Error("Err(nil) != nil")
	}
}

func TestEmbedded(t *testing.T) {
	got := Embedded(`org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p\"w-1";`)
	if len(got) == 0 || got[0] != `p\"w-1` {
		t.Errorf("JAAS: %q", got)
	}
	got = Embedded("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=abc+/=;EntityPath=h")
	if len(got) != 1 || got[0] != "abc+/=" {
		t.Errorf("connection string: %q", got)
	}
	if got := Embedded("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=K3y==;"); len(got) != 1 || got[0] != "K3y==" {
		t.Errorf("account key: %q", got)
	}
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	s := NewScrubber("Hunter2-x")
	log := slog.New(s.Handler(slog.NewTextHandler(&buf, nil))).With("opt", "Hunter2-x")
	log.Info("topic Hunter2-x is missing", "err", errors.New("no Hunter2-x"), "g", slog.GroupValue(slog.String("v", "Hunter2-x")), "n", 3)
	if out := buf.String(); strings.Contains(out, "Hunter2") || !strings.Contains(out, "n=3") || strings.Count(out, Mark) != 4 {
		t.Errorf("log line %q", out)
	}
	// Wrapping twice keeps both scrubbers' secrets.
	buf.Reset()
	log = slog.New(NewScrubber("other-secret").Handler(s.Handler(slog.NewTextHandler(&buf, nil))))
	log.Info("Hunter2-x other-secret")
	if strings.Contains(buf.String(), "Hunter2") || strings.Contains(buf.String(), "other-secret") {
		t.Errorf("log line %q", buf.String())
	}
}

func TestScrubberIgnoresCase(t *testing.T) {
	s := NewScrubber("Hunter2-X")
	if got := s.Text(`invalid interval "hunter2-x"`); strings.Contains(strings.ToLower(got), "hunter2") {
		t.Errorf("Text = %q", got)
	}
}
