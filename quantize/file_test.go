package quantize

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sd-go-project/sd-go/binding"
)

// The tiny diffusers SD1 pipeline of the test data (f32 weights).
var tinyModel = filepath.Join("..", "testdata", "pipeline", "tiny_sd1")

func loadLib(t *testing.T) *binding.Library {
	t.Helper()
	lib, err := binding.Load(binding.LoadOptions{})
	if err != nil {
		t.Fatalf("load the engine library (set SDGO_LIBRARY or run `make`): %v", err)
	}
	return lib
}

// File writes what Policy.Choose decides, tensor by tensor, and the
// summary adds up.
func TestFileFollowsThePolicy(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		target Type
		rules  string
	}{
		{Q8_0, ""},
		{Q4_0, ""},
		{Q4_1, `first_stage_model\.=f16`},
		{F16, ""},
	} {
		rules, err := ParseRules(tc.rules)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, tc.target.String()+".gguf")
		var reports int
		sum, err := File(context.Background(), lib, tinyModel, out, tc.target, Options{Rules: rules, Threads: 2,
			Progress: func(Progress) { reports++ }})
		if err != nil {
			t.Fatalf("%v: %v", tc.target, err)
		}
		src, err := lib.OpenQuantizeSource(tinyModel)
		if err != nil {
			t.Fatal(err)
		}
		back, err := lib.OpenQuantizeSource(out)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]binding.SourceTensor{}
		for _, b := range back.Tensors() {
			got[b.Name] = b
		}
		pol := Policy{Target: tc.target, Rules: rules}
		byType := map[Type]int{}
		converted, vaeQuant := 0, 0
		for _, s := range src.Tensors() {
			want, _ := pol.Choose(Tensor{Name: s.Name, Type: Type(s.Type), Ne: s.Ne})
			b, ok := got[s.Name]
			if !ok {
				t.Fatalf("%v: %s missing from the output", tc.target, s.Name)
			}
			if Type(b.Type) != want || b.Ne != s.Ne {
				t.Errorf("%v: %s is %v %v, policy says %v %v", tc.target, s.Name, Type(b.Type).Name(), b.Ne, want.Name(), s.Ne)
			}
			byType[want]++
			if int32(want) != s.Type {
				converted++
			}
			if strings.HasPrefix(s.Name, "first_stage_model.") && want.BlockSize() > 1 {
				vaeQuant++
			}
		}
		if sum.Tensors != len(src.Tensors()) || sum.Converted != converted || sum.Dropped != 0 || len(sum.ByType) != len(byType) {
			t.Errorf("%v: summary %+v; want %d tensors, %d converted", tc.target, sum, len(src.Tensors()), converted)
		}
		for ty, n := range byType {
			if sum.ByType[ty] != n {
				t.Errorf("%v: summary has %d %v tensors, want %d", tc.target, sum.ByType[ty], ty, n)
			}
		}
		if tc.target.BlockSize() > 1 && sum.ByType[tc.target] == 0 {
			t.Errorf("%v: nothing was quantized", tc.target)
		}
		if tc.rules != "" && vaeQuant != 0 {
			t.Errorf("rules kept %d VAE tensors quantized", vaeQuant)
		}
		st, _ := os.Stat(out)
		if st == nil || uint64(st.Size()) != sum.OutputBytes || sum.SourceBytes == 0 || sum.Duration <= 0 || reports == 0 {
			t.Errorf("%v: summary %+v, file %v, %d reports", tc.target, sum, st, reports)
		}
		src.Close()
		back.Close()
	}
}

// The bytes do not depend on the thread count.
func TestFileSameBytesAnyThreads(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	var files [][]byte
	for _, n := range []int{1, 2, 3} {
		out := filepath.Join(dir, "t.gguf")
		if _, err := File(context.Background(), lib, tinyModel, out, Q4_1, Options{Threads: n}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) || !bytes.Equal(files[0], files[2]) {
		t.Fatal("output depends on the thread count")
	}
}

func TestFileErrors(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	ctx := context.Background()
	in := filepath.Join(dir, "in.gguf")
	if _, err := File(ctx, lib, tinyModel, in, F16, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := File(ctx, lib, in, in, Q8_0, Options{}); !errors.Is(err, ErrSameFile) {
		t.Errorf("same file: %v", err)
	}
	if _, err := File(ctx, lib, in, filepath.Join(dir, "x.gguf"), Type(99), Options{}); err == nil {
		t.Error("unknown type accepted")
	}
	if _, err := File(ctx, lib, in, filepath.Join(dir, "x.gguf"), Q8_0, Options{Threads: -1}); err == nil {
		t.Error("negative threads accepted")
	}
	if _, err := File(ctx, lib, filepath.Join(dir, "nope.safetensors"), filepath.Join(dir, "x.gguf"), Q8_0, Options{}); !errors.Is(err, binding.ErrIO) {
		t.Errorf("missing input: %v", err)
	}
	if _, err := File(ctx, lib, in, filepath.Join(dir, "sub", "x.gguf"), Q8_0, Options{}); !errors.Is(err, binding.ErrIO) {
		t.Errorf("missing output folder: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := File(cctx, lib, in, filepath.Join(dir, "x.gguf"), Q8_0, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries left in the folder, want only in.gguf", len(entries))
	}
}

// Two conversions at once (each has its own engine context) give the same
// bytes as one alone.
func TestFileConcurrent(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	outs := []string{filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf"), filepath.Join(dir, "c.gguf")}
	if _, err := File(context.Background(), lib, tinyModel, outs[0], Q5_0, Options{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, o := range outs[1:] {
		go func(o string) {
			_, err := File(context.Background(), lib, tinyModel, o, Q5_0, Options{Threads: 2})
			errs <- err
		}(o)
	}
	for range outs[1:] {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(outs[0])
	for _, o := range outs[1:] {
		if b, _ := os.ReadFile(o); len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the single conversion", o)
		}
	}
}
