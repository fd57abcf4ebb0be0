package logging_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ode-xmpp/ode/internal/logging"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSwitch(t *testing.T) {
	var out syncBuffer
	sw, err := logging.New(&out, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(sw).With("component", "c2s").WithGroup("g")
	log.Debug("hidden")
	log.Info("first", "k", 1)
	if err := sw.Set("json", "debug"); err != nil {
		t.Fatal(err)
	}
	log.Debug("second", "k", 2)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[0], "msg=first") || !strings.Contains(lines[0], "component=c2s") || !strings.Contains(lines[0], "g.k=1") {
		t.Errorf("text line: %s", lines[0])
	}
	if !strings.Contains(lines[1], `"msg":"second"`) || !strings.Contains(lines[1], `"component":"c2s"`) || !strings.Contains(lines[1], `"g":{"k":2}`) {
		t.Errorf("json line: %s", lines[1])
	}
	for _, bad := range [][2]string{{"xml", "info"}, {"text", "loud"}} {
		if err := sw.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if sw.Level() != slog.LevelDebug {
		t.Errorf("a refused Set changed the level to %v", sw.Level())
	}
}

// TestSwitchConcurrent logs from several goroutines while the format
// changes (run with -race).
func TestSwitchConcurrent(t *testing.T) {
	var out syncBuffer
	sw, err := logging.New(&out, "", "")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(sw).With("a", 1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				log.Info("x")
			}
		})
	}
	for i := range 20 {
		if err := sw.Set([]string{"text", "json"}[i%2], "info"); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	if n := strings.Count(out.String(), "\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}
