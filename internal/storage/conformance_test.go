package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/storage/storagetest"
)

var bg = context.Background()

// eachStore runs fn on the local disk and on each emulator, with a
// store rooted at a fresh prefix.
func eachStore(t *testing.T, fn func(t *testing.T, s storage.Store)) {
	t.Run("local", func(t *testing.T) {
		s, err := storage.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Resolve(bg, e.URI("conformance/"+strings.ReplaceAll(t.Name(), "/", "_")))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
}

func names(ents []storage.Entry) []string {
	var out []string
	for _, e := range ents {
		n := e.Name
		if e.IsDir {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func TestConformancePutIfAbsentRace(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Store) {
		const writers = 12
		for round := range 3 {
			name := fmt.Sprintf("_delta_log/%020d.json", round)
			errs := make([]error, writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = s.PutIfAbsent(bg, name, []byte(fmt.Sprintf("writer %d", i)))
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: writers %d and %d both won", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, storage.ErrExist):
					t.Fatalf("round %d: loser %d: %v, want ErrExist", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody won: %v", round, errs)
			}
			if got, err := s.Get(bg, name); err != nil || string(got) != fmt.Sprintf("writer %d", winner) {
				t.Fatalf("round %d: content %q, %v; want writer %d's", round, got, err, winner)
			}
		}
	})
}

func TestConformanceBasics(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Store) {
		if _, err := s.Get(bg, "offsets/0"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Get(missing) = %v, want ErrNotExist", err)
		}
		if _, err := s.Open(bg, "offsets/0"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Open(missing) = %v, want ErrNotExist", err)
		}
		if ents, err := s.List(bg, "offsets"); err != nil || len(ents) != 0 {
			t.Errorf("List(missing) = %v, %v", ents, err)
		}
		before := time.Now().Add(-time.Minute)
		for _, n := range []string{"offsets/10", "offsets/9", "offsets/sub/x", "metadata"} {
			if err := s.PutIfAbsent(bg, n, []byte(n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutIfAbsent(bg, "offsets/9", []byte("other")); !errors.Is(err, storage.ErrExist) {
			t.Errorf("second put-if-absent: %v, want ErrExist", err)
		}
		if err := s.Put(bg, "_last_checkpoint", []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(bg, "_last_checkpoint", []byte("bb")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(bg, "_last_checkpoint"); err != nil || string(got) != "bb" {
			t.Errorf("after replace: %q, %v", got, err)
		}
		ents, err := s.List(bg, "offsets")
		if err != nil || !slices.Equal(names(ents), []string{"10", "9", "sub/"}) {
			t.Fatalf("List = %v, %v", names(ents), err)
		}
		if ents[0].Size != 10 || ents[0].ModTime.Before(before) || ents[0].ModTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("entry %+v: want size 10 and a recent modification time", ents[0])
		}
		root, err := s.List(bg, "")
		if err != nil || !slices.Equal(names(root), []string{"_last_checkpoint", "metadata", "offsets/"}) {
			t.Errorf("List(root) = %v, %v", names(root), err)
		}
		r, err := s.Open(bg, "offsets/sub/x")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != "offsets/sub/x" {
			t.Errorf("Open = %q, %v", got, err)
		}
		var walked []string
		if err := storage.Walk(bg, s, "", nil, func(name string, e storage.Entry) error {
			walked = append(walked, name)
			return nil
		}); err != nil || !slices.Equal(walked, []string{"_last_checkpoint", "metadata", "offsets/10", "offsets/9", "offsets/sub/x"}) {
			t.Errorf("Walk = %v, %v", walked, err)
		}
		if err := s.Delete(bg, "offsets/9", "offsets/404", "metadata"); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if _, err := s.Get(bg, "offsets/9"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("deleted file: %v", err)
		}
		sub, err := storage.Sub(s, "offsets")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := sub.Get(bg, "sub/x"); err != nil || string(got) != "offsets/sub/x" {
			t.Errorf("Sub Get = %q, %v", got, err)
		}
		if u := storage.URI(sub, "sub/x"); !strings.HasSuffix(u, "/offsets/sub/x") || !strings.Contains(u, "://") {
			t.Errorf("URI = %q", u)
		}
		if err := storage.DeleteAll(bg, s, "offsets"); err != nil {
			t.Fatal(err)
		}
		if ents, err := s.List(bg, ""); err != nil || !slices.Equal(names(ents), []string{"_last_checkpoint"}) {
			t.Errorf("after DeleteAll: %v, %v", names(ents), err)
		}
	})
}

// TestConformanceStreams writes files through Create: small ones (one
// request on object stores) and large ones (uploaded in blocks), and
// checks that nothing is visible before Commit, that Abort leaves
// nothing, that Finish-then-Commit publishes, and that IfAbsent refuses a
// taken name.
func TestConformanceStreams(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Store) {
		big := make([]byte, 13<<20) // over two 5 MiB S3 parts, several 1 MiB Azure blocks
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range big {
			big[i] = byte(rng.Uint32())
		}
		for _, tc := range []struct {
			name string
			data []byte
		}{{"small", []byte("v1\nsmall")}, {"big", big}} {
			w, err := s.Create(bg, "part-"+tc.name, storage.IfAbsent)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(tc.data); off += 100_000 {
				if _, err := w.Write(tc.data[off:min(off+100_000, len(tc.data))]); err != nil {
					t.Fatal(err)
				}
			}
			if ents, _ := s.List(bg, ""); slices.Contains(names(ents), "part-"+tc.name) {
				t.Errorf("%s: listed before Commit", tc.name)
			}
			if err := w.Finish(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Errorf("%s: Write after Finish succeeded", tc.name)
			}
			if _, err := s.Get(bg, "part-"+tc.name); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("%s: visible after Finish: %v", tc.name, err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(bg, "part-"+tc.name); err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("%s: read back %d bytes (%v), want %d", tc.name, len(got), err, len(tc.data))
			}
			// A second writer of the name loses.
			w2, err := s.Create(bg, "part-"+tc.name, storage.IfAbsent)
			if err != nil {
				t.Fatal(err)
			}
			w2.Write(append([]byte("other "), tc.data...))
			if err := w2.Commit(); !errors.Is(err, storage.ErrExist) {
				t.Errorf("%s: second IfAbsent writer: %v, want ErrExist", tc.name, err)
			}
			if got, _ := s.Get(bg, "part-"+tc.name); !bytes.Equal(got, tc.data) {
				t.Errorf("%s: the losing writer changed the file", tc.name)
			}
			// Replace mode overwrites.
			w3, _ := s.Create(bg, "part-"+tc.name, storage.Replace)
			w3.Write(tc.data[:len(tc.data)/2])
			if err := w3.Commit(); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Get(bg, "part-"+tc.name); !bytes.Equal(got, tc.data[:len(tc.data)/2]) {
				t.Errorf("%s: Replace did not replace", tc.name)
			}
			// Aborted after Finish: nothing.
			w4, _ := s.Create(bg, "aborted-"+tc.name, storage.IfAbsent)
			w4.Write(tc.data)
			if err := w4.Finish(); err != nil {
				t.Fatal(err)
			}
			w4.Abort()
			if err := w4.Commit(); err == nil {
				t.Errorf("%s: Commit after Abort succeeded", tc.name)
			}
			if _, err := s.Get(bg, "aborted-"+tc.name); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("%s: aborted file visible: %v", tc.name, err)
			}
		}
		ents, err := s.List(bg, "")
		if err != nil || !slices.Equal(names(ents), []string{"part-big", "part-small"}) {
			t.Errorf("List = %v, %v", names(ents), err)
		}
		if b, ok := storage.UploadBuffers(s); ok && (b.Used != 0 || b.Peak == 0 || b.Peak > b.Limit) {
			t.Errorf("upload buffers after the writes: %+v (want none held, a peak within the limit)", b)
		}
	})
}
