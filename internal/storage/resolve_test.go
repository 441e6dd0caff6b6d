package storage_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/storage/storagetest"
)

func TestParseLocation(t *testing.T) {
	abs, _ := filepath.Abs("rel/dir")
	for _, tc := range []struct {
		in   string
		want storage.Location
		str  string
	}{
		{"rel/dir", storage.Location{Kind: storage.KindLocal, Path: abs}, abs},
		{"/tmp/x/", storage.Location{Kind: storage.KindLocal, Path: "/tmp/x"}, "/tmp/x"},
		{"file:///tmp/a%20b", storage.Location{Kind: storage.KindLocal, Scheme: "file", Path: "/tmp/a b"}, "/tmp/a b"},
		{"file:/tmp/x", storage.Location{Kind: storage.KindLocal, Scheme: "file", Path: "/tmp/x"}, "/tmp/x"},
		{"abfss://lake@acct.dfs.core.windows.net/tables/orders/", storage.Location{Kind: storage.KindAzure, Scheme: "abfss", Account: "acct", Host: "acct.dfs.core.windows.net", Container: "lake", Key: "tables/orders"},
			"abfss://lake@acct.dfs.core.windows.net/tables/orders"},
		{"wasbs://lake@Acct.blob.core.windows.net", storage.Location{Kind: storage.KindAzure, Scheme: "wasbs", Account: "acct", Host: "acct.blob.core.windows.net", Container: "lake"},
			"wasbs://lake@acct.blob.core.windows.net"},
		{"az://lake/t", storage.Location{Kind: storage.KindAzure, Scheme: "az", Container: "lake", Key: "t"}, "az://lake/t"},
		{"s3a://bucket/a/b", storage.Location{Kind: storage.KindS3, Scheme: "s3a", Container: "bucket", Key: "a/b"}, "s3a://bucket/a/b"},
		{"S3://bucket", storage.Location{Kind: storage.KindS3, Scheme: "s3", Container: "bucket"}, "s3://bucket"},
		{"data:2024", storage.Location{Kind: storage.KindLocal, Path: filepath.Join(filepath.Dir(abs), "..", "data:2024")}, ""},
	} {
		got, err := storage.ParseLocation(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.in == "data:2024" {
			if !got.IsLocal() || filepath.Base(got.Path) != "data:2024" {
				t.Errorf("%q: %+v, want a local relative path", tc.in, got)
			}
			continue
		}
		if got != tc.want || got.String() != tc.str {
			t.Errorf("%q: %+v (%s), want %+v (%s)", tc.in, got, got, tc.want, tc.str)
		}
	}
	for in, want := range map[string]string{
		"gs://bucket/x":                       `unsupported storage scheme "gs"`,
		"hdfs://nn:8020/x":                    `unsupported storage scheme "hdfs"`,
		"https://a.b/c":                       `unsupported storage scheme "https"`,
		"abfss://acct.dfs.core.windows.net/x": "want abfss://container@account.dfs.core.windows.net/path",
		"s3a:///x":                            "want s3a://bucket/path",
		"abfss://c@a.dfs.core.windows.net/p?sv=1&sig=SECRET": "takes no query string",
		"s3a://b/x/../y": "not allowed",
	} {
		_, err := storage.ParseLocation(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%q: the error shows the SAS: %v", in, err)
		}
	}
	_, err := storage.ParseLocation("az://bar/delta")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.ParseLocation("gs://b/x"); err == nil || !strings.Contains(err.Error(), "s3a://bucket/path") {
		t.Errorf("the unsupported-scheme error does not list the supported ones: %v", err)
	}
}

func TestLocationRel(t *testing.T) {
	root, _ := storage.ParseLocation("s3a://b/out")
	f, _ := storage.ParseLocation("s3a://b/out/p=1/part-0.parquet")
	if rel, ok := root.Rel(f); !ok || rel != "p=1/part-0.parquet" {
		t.Errorf("Rel = %q, %v", rel, ok)
	}
	other, _ := storage.ParseLocation("s3a://b/outside/x")
	if _, ok := root.Rel(other); ok {
		t.Error("Rel accepted a file outside the root")
	}
	if c := root.Child("_spark_metadata/0"); c.String() != "s3a://b/out/_spark_metadata/0" {
		t.Errorf("Child = %s", c)
	}
}

func TestResolverOptionErrors(t *testing.T) {
	for conf, want := range map[[2]string]string{
		{"fs.s3a.path.style.access", "yes"}:                      `option "fs.s3a.path.style.access": invalid value "yes"`,
		{"spark.hadoop.fs.s3a.bucket.b.path.style.access", "1x"}: `fs.s3a.bucket.b.path.style.access`,
		{storage.OptAzureEndpoint, "127.0.0.1:10000"}:            `an http:// or https:// URL`,
		{storage.OptBlockSize, "12"}:                             `sluice.storage.blockSize`,
		{"fs.s3a.multipart.size", "lots"}:                        `fs.s3a.multipart.size`,
		{storage.OptUploadConcurrency, "0"}:                      `sluice.storage.uploadConcurrency`,
	} {
		_, err := storage.NewResolver(map[string]string{conf[0]: conf[1]})
		var oe *options.Error
		if err == nil || !strings.Contains(err.Error(), want) || !errors.As(err, &oe) {
			t.Errorf("%s=%s: %v, want an option error containing %q", conf[0], conf[1], err, want)
		}
	}
	if _, err := storage.NewResolver(map[string]string{"fs.s3a.multipart.size": "64M", "unrelated": "x"}); err != nil {
		t.Errorf("valid settings: %v", err)
	}
}

// TestResolverCredentialsNeverShown fails requests with secrets in the
// settings and checks the errors do not carry them.
func TestResolverCredentialsNeverShown(t *testing.T) {
	const sig = "SiGnAtUrE0123456789abcdef"
	t.Run("azurite SAS", func(t *testing.T) {
		e := storagetest.Azurite(t)
		conf := map[string]string{
			storage.OptAzureEndpoint: e.Conf[storage.OptAzureEndpoint],
			"fs.azure.sas.fixed.token.devstoreaccount1.dfs.core.windows.net": "sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=" + sig,
		}
		r, err := storage.NewResolver(conf, storage.WithEnv(func(string) string { return "" }))
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Resolve(bg, e.URI("x"))
		if err != nil {
			t.Fatal(err)
		}
		err = s.PutIfAbsent(bg, "f", []byte("x"))
		if err == nil {
			t.Fatal("a forged SAS was accepted")
		}
		if strings.Contains(err.Error(), sig) {
			t.Errorf("the error shows the SAS signature: %v", err)
		}
	})
	t.Run("azurite wrong key", func(t *testing.T) {
		e := storagetest.Azurite(t)
		key := "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
		r, err := storage.NewResolver(map[string]string{
			storage.OptAzureEndpoint: e.Conf[storage.OptAzureEndpoint],
			"spark.hadoop.fs.azure.account.key.devstoreaccount1.dfs.core.windows.net": key,
		}, storage.WithEnv(func(string) string { return "" }))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Resolve(bg, e.URI("x"))
		_, err = s.List(bg, "")
		if err == nil || strings.Contains(err.Error(), key) {
			t.Errorf("wrong key: %v", err)
		}
	})
	t.Run("s3 missing bucket", func(t *testing.T) {
		e := storagetest.S3(t)
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Resolve(bg, "s3a://no-such-bucket/x")
		err = s.PutIfAbsent(bg, "f", []byte("x"))
		if err == nil || !strings.Contains(err.Error(), "bucket does not exist") || strings.Contains(err.Error(), storagetest.S3SecretKey) {
			t.Errorf("missing bucket: %v", err)
		}
	})
	t.Run("connection string", func(t *testing.T) {
		e := storagetest.Azurite(t)
		cs := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + storagetest.AzuriteKey + ";BlobEndpoint=" + e.Endpoint + ";"
		r, err := storage.NewResolver(nil, storage.WithEnv(func(k string) string {
			if k == "AZURE_STORAGE_CONNECTION_STRING" {
				return cs
			}
			return ""
		}))
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Resolve(bg, "abfss://test@devstoreaccount1.dfs.core.windows.net/cs")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutIfAbsent(bg, "f", []byte("x")); err != nil {
			t.Fatalf("with AZURE_STORAGE_CONNECTION_STRING: %v", err)
		}
		missing, _ := r.Resolve(bg, "abfss://nope@devstoreaccount1.dfs.core.windows.net/cs")
		err = missing.PutIfAbsent(bg, "f", []byte("x"))
		if err == nil || !strings.Contains(err.Error(), "container does not exist") || strings.Contains(err.Error(), storagetest.AzuriteKey) {
			t.Errorf("missing container: %v", err)
		}
	})
	t.Run("az short form needs an account", func(t *testing.T) {
		r, _ := storage.NewResolver(nil, storage.WithEnv(func(string) string { return "" }))
		_, err := r.Resolve(bg, "az://bar/delta")
		if err == nil || !strings.Contains(err.Error(), storage.OptAzureAccount) {
			t.Errorf("az:// without an account: %v", err)
		}
	})
}
