package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/web"
)

// defaultProbeURL is what `sluice probe` checks without an argument: the
// readiness of a `sluice run` on the default UI address.
const defaultProbeURL = "http://" + web.DefaultAddr + web.ReadyzPath

// maxProbeBody bounds what probe reads and prints of an answer.
const maxProbeBody = 4 << 10

// runProbe GETs a health endpoint and exits 0 on a 2xx answer, 1 on any
// other answer or no answer: a container health check for images without
// a shell or curl (the distroless image), e.g. Docker Compose's
// `test: ["CMD", "sluice", "probe", "http://127.0.0.1:4040/readyz"]`.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", stderr)
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target := defaultProbeURL
	switch fs.NArg() {
	case 0:
	case 1:
		target = fs.Arg(0)
	default:
		return &exitError{code: 2, err: fmt.Errorf("one URL expected, got %q", fs.Args())}
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &exitError{code: 2, err: fmt.Errorf("%q is not an http:// or https:// URL", target)}
	}
	if *timeout <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--timeout %s must be positive", *timeout)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	line := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, line)
	}
	fmt.Fprintln(stdout, line)
	return nil
}
