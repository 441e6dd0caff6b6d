package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The token can come from SLUICE_UI_TOKEN, so that it does not show in ps;
// off loopback it is required for reads too, and it never appears in the
// help text.
func TestRunUITokenFromEnvironment(t *testing.T) {
	const token = "env-s3cret-token"
	t.Setenv("SLUICE_UI_TOKEN", token)
	var help bytes.Buffer
	_ = runPipeline(context.Background(), []string{"--help"}, &help, &help)
	if strings.Contains(help.String(), token) {
		t.Fatalf("the help text shows the token:\n%s", help.String())
	}
	if !strings.Contains(help.String(), "SLUICE_UI_TOKEN") {
		t.Errorf("the help text does not mention SLUICE_UI_TOKEN:\n%s", help.String())
	}

	b := startOrders(t, 5)
	p := writePipeline(t, b.Addr(), "processingTime: 100 milliseconds", "")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runPipeline(ctx, []string{p, "--ui-addr", "0.0.0.0:0", "--quiet"}, &bytes.Buffer{}, &stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	re := regexp.MustCompile(`live UI and API" url=http://[^ ]*:(\d+)/`)
	var port string
	for deadline := time.Now().Add(30 * time.Second); port == ""; {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			port = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the UI did not start:\n%s", stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	url := "http://127.0.0.1:" + port + "/api/v1/queries"
	for auth, want := range map[string]int{"": 401, "Bearer wrong": 401, "Bearer " + token: 200} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET with Authorization %q: %d, want %d", auth, resp.StatusCode, want)
		}
	}
}

func TestRunNonLoopbackUINeedsToken(t *testing.T) {
	t.Setenv("SLUICE_UI_TOKEN", "")
	b := startOrders(t, 1)
	p := writePipeline(t, b.Addr(), "processingTime: 100 milliseconds", "")
	var stderr bytes.Buffer
	err := runPipeline(context.Background(), []string{p, "--ui-addr", "0.0.0.0:0", "--quiet"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--ui-addr: web: 0.0.0.0:0 is not a loopback address: a token is required") {
		t.Fatalf("err = %v, want a token error", err)
	}
}
