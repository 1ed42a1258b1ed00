package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the CLI in-process against the real engine library.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"sd-go"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionPrintsVersionsAndCPU(t *testing.T) {
	code, out, errs := runCLI(t, "version")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"sd-go " + version, "engine 0.1.0 (ABI 2)", "cpu features:", "code path:", "backend cpu:", "device 0: cpu"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, errs := runCLI(t, "version", "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var v struct {
		Version    string   `json:"version"`
		Library    string   `json:"library"`
		ABIVersion int      `json:"abi_version"`
		CodePath   string   `json:"code_path"`
		CodePaths  []string `json:"code_paths"`
		Backends   []struct {
			Name    string `json:"name"`
			Devices []struct {
				Index int    `json:"index"`
				Name  string `json:"name"`
				Type  string `json:"type"`
			} `json:"devices"`
		} `json:"backends"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if v.Version != version || v.ABIVersion != 2 || v.CodePath == "" || len(v.CodePaths) == 0 || v.Library == "" {
		t.Fatalf("unexpected %+v", v)
	}
	if len(v.Backends) == 0 || v.Backends[0].Name != "cpu" || len(v.Backends[0].Devices) != 1 ||
		v.Backends[0].Devices[0].Type != "cpu" {
		t.Fatalf("backends %+v", v.Backends)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown command", []string{"paint"}, exitUsage, `unknown command "paint"`},
		{"unknown flag", []string{"version", "--bogus"}, exitUsage, "bogus"},
		{"unknown global flag", []string{"--bogus", "version"}, exitUsage, "bogus"},
		{"stray argument", []string{"version", "extra"}, exitUsage, `"extra"`},
		{"library not found", []string{"--lib", "/nonexistent/libsdgo.so", "version"}, exitFailure, "/nonexistent/libsdgo.so"},
		{"help", []string{"help"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Fatalf("exit %d stderr %q; want exit %d mentioning %q", code, errs, tc.code, tc.msg)
			}
		})
	}
}

func TestInterruptedContextExits130(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var errb bytes.Buffer
	if code := report(ctx, context.Canceled, &errb); code != exitInterrupted {
		t.Fatalf("exit %d, want %d", code, exitInterrupted)
	}
	if code := report(context.Background(), errors.New("boom"), &errb); code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
}

// TestBinaryWithMissingLibrary builds the real binary and runs it the way a
// user would, with SDGO_LIBRARY pointing nowhere.
func TestBinaryWithMissingLibrary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sd-go")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "SDGO_LIBRARY=/nonexistent")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("got %v, want exit status 1", err)
	}
	if !strings.Contains(errb.String(), "/nonexistent") {
		t.Fatalf("stderr %q does not name the path", errb.String())
	}
}
