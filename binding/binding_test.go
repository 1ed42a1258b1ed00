package binding

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// loadLib loads the real library from the build folder (make builds it).
// There is no mock: a missing library fails the test.
func loadLib(t testing.TB) *Library {
	t.Helper()
	lib, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("load the engine library (run `make` first): %v", err)
	}
	return lib
}

func TestLoadChecksVersions(t *testing.T) {
	lib := loadLib(t)
	if lib.ABIVersion() != ABIVersion {
		t.Fatalf("ABI version %d, want %d", lib.ABIVersion(), ABIVersion)
	}
	if v := lib.Version(); len(strings.Split(v, ".")) != 3 {
		t.Fatalf("engine version %q is not MAJOR.MINOR.PATCH", v)
	}
	if !strings.HasSuffix(lib.Path(), libraryFileName()) {
		t.Fatalf("path %q does not name %s", lib.Path(), libraryFileName())
	}
	again, err := Load(LoadOptions{Path: lib.Path()})
	if err != nil || again != lib {
		t.Fatalf("loading the same file again gave %p, %v; want the same library", again, err)
	}
	// A directory holding the library works as well as the file.
	viaDir, err := Load(LoadOptions{Path: filepath.Dir(lib.Path())})
	if err != nil || viaDir != lib {
		t.Fatalf("loading by directory gave %p, %v", viaDir, err)
	}
}

func TestLoadReportsEveryPlaceTried(t *testing.T) {
	t.Setenv("SDGO_LIBRARY", "/nonexistent/libsdgo.so")
	_, err := Load(LoadOptions{})
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want *LibraryNotFoundError", err)
	}
	if len(nf.Tried) != 1 || nf.Tried[0].Path != "/nonexistent/libsdgo.so" {
		t.Fatalf("tried %+v, want exactly the SDGO_LIBRARY path", nf.Tried)
	}
	if !strings.Contains(err.Error(), "/nonexistent/libsdgo.so") {
		t.Fatalf("message %q does not name the path", err)
	}

	// A file that is not a shared library is reported with the loader's reason.
	bogus := filepath.Join(t.TempDir(), libraryFileName())
	if err := os.WriteFile(bogus, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(LoadOptions{Path: bogus})
	if !errors.As(err, &nf) || len(nf.Tried) != 1 || nf.Tried[0].Err == nil {
		t.Fatalf("got %v, want a not-found error with the loader's reason", err)
	}
}

func TestDefaultSearchOrder(t *testing.T) {
	t.Setenv("SDGO_LIBRARY", "")
	c := candidates(LoadOptions{})
	if len(c) < 3 {
		t.Fatalf("candidates %v: want beside the executable, ../lib and the build folder", c)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if c[0] != filepath.Join(filepath.Dir(exe), libraryFileName()) {
		t.Fatalf("first candidate %q is not beside the executable", c[0])
	}
	if c[1] != filepath.Join(filepath.Dir(filepath.Dir(exe)), "lib", libraryFileName()) {
		t.Fatalf("second candidate %q is not ../lib", c[1])
	}
	last := c[len(c)-1]
	if !strings.HasSuffix(last, filepath.Join("build", "lib", libraryFileName())) {
		t.Fatalf("last candidate %q is not the build folder", last)
	}
}

func TestEngineSystemInfo(t *testing.T) {
	lib := loadLib(t)
	e, err := lib.NewEngine(EngineOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info, err := e.SystemInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.Threads != 2 || info.ABIVersion != ABIVersion || info.EngineVersion != lib.Version() {
		t.Fatalf("info %+v: want 2 threads and the library's versions", info)
	}
	if len(info.CodePaths) == 0 || info.CodePaths[len(info.CodePaths)-1] != "scalar" || info.CodePath != info.CodePaths[0] {
		t.Fatalf("code paths %v, chosen %q: want best first, scalar last, best chosen", info.CodePaths, info.CodePath)
	}
	if runtime.GOARCH == "amd64" {
		if info.Arch != "x86_64" || !contains(info.CPUFeatures, "sse4.2") {
			t.Fatalf("arch %q features %v: want x86_64 with sse4.2", info.Arch, info.CPUFeatures)
		}
	}
	if info.PhysicalCores < 1 || info.LogicalCores < info.PhysicalCores {
		t.Fatalf("cores: physical %d logical %d", info.PhysicalCores, info.LogicalCores)
	}
}

func TestEngineErrorsCarryTheEngineMessage(t *testing.T) {
	lib := loadLib(t)
	e, err := lib.NewEngine(EngineOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = e.SetCodePath("warp-drive")
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "warp-drive") {
		t.Fatalf("got %v, want an invalid-argument error naming the path", err)
	}
	if err := e.SetCodePath("scalar"); err != nil {
		t.Fatal(err)
	}
	info, err := e.SystemInfo()
	if err != nil || info.CodePath != "scalar" {
		t.Fatalf("after forcing scalar: %+v, %v", info, err)
	}
	e.Close()
	e.Close() // idempotent
	if _, err := e.SystemInfo(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed engine gave %v, want ErrClosed", err)
	}

	_, err = lib.NewEngine(EngineOptions{Threads: 100000})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "100000") {
		t.Fatalf("got %v, want the engine's message about the thread count", err)
	}
}

func TestEnginesAreSafeAcrossGoroutines(t *testing.T) {
	lib := loadLib(t)
	e, err := lib.NewEngine(EngineOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := e.SystemInfo(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestLoggerReceivesEngineMessages(t *testing.T) {
	lib := loadLib(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})
	lib.SetLogger(slog.New(h))
	defer lib.SetLogger(nil)
	e, err := lib.NewEngine(EngineOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	mu.Lock()
	got := buf.String()
	mu.Unlock()
	if !strings.Contains(got, "context: 1 threads") || !strings.Contains(got, "source=engine") {
		t.Fatalf("log output %q lacks the engine's debug message", got)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
