package binding

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

type stTensor struct {
	name  string
	dtype string // "F32", "F16", "U8"
	shape []int64
	data  []byte
}

// writeSafetensors writes a minimal valid safetensors file.
func writeSafetensors(t *testing.T, path string, ts []stTensor) {
	t.Helper()
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	hdr := map[string]any{}
	var off int
	var blob []byte
	for _, x := range ts {
		hdr[x.name] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{off, off + len(x.data)}}
		off += len(x.data)
		blob = append(blob, x.data...)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), blob...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func f32Bytes(n int, f func(i int) float32) []byte {
	b := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f(i)))
	}
	return b
}

const (
	tF32  int32 = 0
	tF16  int32 = 1
	tQ4_0 int32 = 2
	tQ8_0 int32 = 8
)

func smallModel(t *testing.T, dir string) string {
	p := filepath.Join(dir, "small.safetensors")
	writeSafetensors(t, p, []stTensor{
		{"model.diffusion_model.input_blocks.1.1.proj_in.weight", "F32", []int64{64, 64}, f32Bytes(64*64, func(i int) float32 { return float32(math.Sin(float64(i))) })},
		{"model.diffusion_model.out.0.bias", "F32", []int64{64}, f32Bytes(64, func(i int) float32 { return float32(i) / 64 })},
		{"first_stage_model.decoder.conv_in.weight", "F16", []int64{8, 4, 3, 3}, make([]byte, 2*8*4*3*3)},
		{"extra.flags", "U8", []int64{3}, []byte{1, 2, 3}},
	})
	return p
}

func TestQuantizeSourceListsAndWrites(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	src, err := lib.OpenQuantizeSource(smallModel(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ts := src.Tensors()
	if len(ts) != 4 {
		t.Fatalf("%d tensors: %+v", len(ts), ts)
	}
	byName := map[string]int{}
	for i, x := range ts {
		byName[x.Name] = i
	}
	w := ts[byName["model.diffusion_model.input_blocks.1.1.proj_in.weight"]]
	if w.Type != tF32 || w.StoredType != tF32 || w.Ne != [4]int64{64, 64, 1, 1} || w.NDims != 2 || w.Bytes != 64*64*4 {
		t.Errorf("weight %+v", w)
	}
	c := ts[byName["first_stage_model.decoder.conv_in.weight"]]
	if c.Type != tF16 || c.Ne != [4]int64{3, 3, 4, 8} || c.NDims != 4 {
		t.Errorf("conv %+v", c)
	}
	u := ts[byName["extra.flags"]]
	if u.Type != DropTensor || u.StoredType != -1 {
		t.Errorf("u8 tensor %+v", u)
	}
	if src.FileBytes() == 0 {
		t.Error("no file bytes")
	}

	plan := make([]int32, len(ts))
	for i, x := range ts {
		plan[i] = x.Type
	}
	plan[byName["model.diffusion_model.input_blocks.1.1.proj_in.weight"]] = tQ8_0
	eng, err := lib.NewEngine(EngineOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	out := filepath.Join(dir, "out.gguf")
	var reports []QuantizeProgress
	res, err := src.Write(context.Background(), eng, plan, out, func(p QuantizeProgress) { reports = append(reports, p) })
	if err != nil {
		t.Fatal(err)
	}
	if res.TensorsWritten != 3 || res.TensorsDropped != 1 || res.BytesIn != 64*64*4+64*4+2*8*4*9 {
		t.Errorf("result %+v", res)
	}
	st, err := os.Stat(out)
	if err != nil || uint64(st.Size()) != res.BytesOut {
		t.Fatalf("output %v (%v), result says %d bytes", st, err, res.BytesOut)
	}
	if len(reports) < 7 || reports[len(reports)-1].Phase != PhaseFinishing || reports[len(reports)-1].BytesDone != res.BytesIn {
		t.Errorf("progress %+v", reports)
	}

	// Read it back: types and shapes as planned.
	back, err := lib.OpenQuantizeSource(out)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if len(back.Tensors()) != 3 {
		t.Fatalf("read back %d tensors", len(back.Tensors()))
	}
	for _, b := range back.Tensors() {
		i, ok := byName[b.Name]
		if !ok {
			t.Fatalf("unexpected tensor %s", b.Name)
		}
		if b.Type != plan[i] || b.StoredType != plan[i] || b.Ne != ts[i].Ne {
			t.Errorf("%s: read back %+v, planned type %d shape %v", b.Name, b, plan[i], ts[i].Ne)
		}
	}
	wb := back.Tensors()[0]
	for _, b := range back.Tensors() {
		if b.Name == w.Name {
			wb = b
		}
	}
	if wb.Bytes != 64*64/32*34 {
		t.Errorf("q8_0 tensor has %d bytes", wb.Bytes)
	}
}

func TestQuantizeWriteErrors(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	if _, err := lib.OpenQuantizeSource(filepath.Join(dir, "missing.safetensors")); !errors.Is(err, ErrIO) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("not a model at all, just text"), 0o644)
	if _, err := lib.OpenQuantizeSource(bad); err == nil {
		t.Error("garbage accepted")
	}
	src, err := lib.OpenQuantizeSource(smallModel(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := lib.NewEngine(EngineOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	out := filepath.Join(dir, "o.gguf")
	if _, err := src.Write(ctx, eng, []int32{0}, out, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("short plan: %v", err)
	}
	plan := make([]int32, len(src.Tensors()))
	for i, x := range src.Tensors() {
		plan[i] = x.Type
	}
	for i, x := range src.Tensors() {
		if x.Type == DropTensor {
			plan[i] = tF32 // u8 has no GGUF type and no conversion
		}
	}
	if _, err := src.Write(ctx, eng, plan, out, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("writing a u8 tensor: %v", err)
	}
	for i, x := range src.Tensors() {
		if x.Type == DropTensor {
			continue
		}
		if x.Ne[0] == 3 { // conv kernel: rows of 3 are no q4_0 blocks
			p := append([]int32(nil), plan...)
			p[i] = tQ4_0
			for j := range p {
				if src.Tensors()[j].Type == DropTensor {
					p[j] = DropTensor
				}
			}
			if _, err := src.Write(ctx, eng, p, out, nil); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("q4_0 conv: %v", err)
			}
		}
	}
	for j := range plan {
		if src.Tensors()[j].Type == DropTensor {
			plan[j] = DropTensor
		}
	}
	if _, err := src.Write(ctx, eng, plan, filepath.Join(dir, "no", "such", "o.gguf"), nil); !errors.Is(err, ErrIO) {
		t.Errorf("missing folder: %v", err)
	}
	if _, err := src.Write(ctx, eng, plan, "/proc/sdgo-quantize-test.gguf", nil); !errors.Is(err, ErrIO) {
		t.Errorf("read-only place: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".safetensors" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	src.Close()
	if _, err := src.Write(ctx, eng, plan, out, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed source: %v", err)
	}
}

// Cancelling the context mid-tensor stops the conversion, removes the
// temporary file and leaves an existing output untouched.
func TestQuantizeCancel(t *testing.T) {
	lib := loadLib(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "big.safetensors")
	const rows, cols = 2048, 4096 // 8M f32 values: several pieces
	writeSafetensors(t, p, []stTensor{
		{"model.diffusion_model.input_blocks.1.1.proj_in.weight", "F32", []int64{rows, cols}, f32Bytes(rows*cols, func(i int) float32 { return float32(i%97) - 48 })},
	})
	src, err := lib.OpenQuantizeSource(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	eng, err := lib.NewEngine(EngineOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	out := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pieces := 0
	_, err = src.Write(ctx, eng, []int32{tQ4_0}, out, func(p QuantizeProgress) {
		if p.Phase == PhaseBytes {
			pieces++
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCanceled) {
		t.Fatalf("err %v", err)
	}
	if pieces != 1 {
		t.Errorf("%d pieces done after cancelling", pieces)
	}
	if b, _ := os.ReadFile(out); string(b) != "previous" {
		t.Errorf("output changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d entries left in the folder", len(entries))
	}
	// The source and engine still work afterwards.
	if _, err := src.Write(context.Background(), eng, []int32{tQ8_0}, out, nil); err != nil {
		t.Fatal(err)
	}
	// A context cancelled before the call returns at once.
	if _, err := src.Write(ctx, eng, []int32{tQ8_0}, out, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("pre-cancelled: %v", err)
	}
}
