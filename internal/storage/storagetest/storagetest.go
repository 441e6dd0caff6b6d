// Package storagetest gives tests the object-store emulators of package
// emulator: Azurite(t) and S3(t) start one for the test and stop it at
// cleanup; without Azurite the test is skipped, or fails under
// SLUICE_REQUIRE_INTEROP=1 (as the kcat and DuckDB interop tests do).
package storagetest

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-stream/sluice/internal/storage/emulator"
)

// Emulator is a running emulator (see package emulator).
type Emulator = emulator.Emulator

// RequestCounter counts an object store's requests by operation.
type RequestCounter = emulator.RequestCounter

// NewRequestCounter returns a RequestCounter.
func NewRequestCounter() *RequestCounter { return emulator.NewRequestCounter() }

// Well-known emulator credentials.
const (
	AzuriteAccount = emulator.AzuriteAccount
	AzuriteKey     = emulator.AzuriteKey
	S3AccessKey    = emulator.S3AccessKey
	S3SecretKey    = emulator.S3SecretKey
)

// missing skips t, or fails it under SLUICE_REQUIRE_INTEROP=1.
func missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("SLUICE_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s required but unavailable: %v", what, err)
	}
	t.Skipf("%s skipped: %v", what, err)
}

// Azurite starts Azurite for the test (stopped at cleanup) with container
// "test"; without Azurite the test is skipped, or fails under
// SLUICE_REQUIRE_INTEROP=1.
func Azurite(t testing.TB) *Emulator {
	t.Helper()
	if _, err := emulator.AzuriteCommand(); err != nil {
		missing(t, "Azurite test", err)
	}
	var log strings.Builder
	e, err := emulator.StartAzurite(context.Background(), "test", &syncWriter{w: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Cleanup(e.Close)
	return e
}

// S3 starts the in-process S3 emulator for the test with bucket "test".
func S3(t testing.TB) *Emulator {
	t.Helper()
	e, err := emulator.StartS3(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// Stores starts each emulator and returns them by name ("azurite", "s3"),
// for tests that run once per store. Azurite is left out (the subtest
// skipped, or failed under SLUICE_REQUIRE_INTEROP=1) when absent.
func Stores(t *testing.T, fn func(t *testing.T, e *Emulator)) {
	t.Run("azurite", func(t *testing.T) { fn(t, Azurite(t)) })
	t.Run("s3", func(t *testing.T) { fn(t, S3(t)) })
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
