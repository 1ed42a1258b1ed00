package binding

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The tiny diffusers pipelines and diffusers' reference runs made by
// testdata/gen/gen_pipeline_ref.py.
var (
	tinyModel        = filepath.Join("..", "testdata", "pipeline", "tiny_sd1")
	tinyInpaintModel = filepath.Join("..", "testdata", "pipeline", "tiny_sd1_inpaint")
	tinyRef          = filepath.Join("..", "testdata", "pipeline", "ref.safetensors")
	tinySDXL         = filepath.Join("..", "testdata", "pipeline", "tiny_sdxl")
	tinySDXLRef      = filepath.Join("..", "testdata", "pipeline", "sdxl_ref.safetensors")
	tinyRefiner      = filepath.Join("..", "testdata", "pipeline", "tiny_sdxl_refiner")
)

func loadTiny(t testing.TB, path string) *Model {
	t.Helper()
	lib := loadLib(t)
	m, err := lib.LoadModel(path, ModelOptions{Threads: 2})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// refTensor reads one F32 tensor of the reference safetensors file.
func refTensor(t *testing.T, name string) []float32 {
	t.Helper()
	return refTensorIn(t, tinyRef, name)
}

// refTensorIn reads one F32 tensor of a safetensors reference file.
func refTensorIn(t *testing.T, file, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var e struct {
		Dtype   string   `json:"dtype"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	raw, ok := hdr[name]
	if !ok {
		t.Fatalf("no reference tensor %s", name)
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Dtype != "F32" {
		t.Fatalf("tensor %s: %v %s", name, err, e.Dtype)
	}
	data := b[8+n+uint64(e.Offsets[0]) : 8+n+uint64(e.Offsets[1])]
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

func initImage(t *testing.T) image.Image {
	v := refTensor(t, "init_image") // [32, 32, 3]
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := 0; i < 32*32; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = uint8(v[3*i]), uint8(v[3*i+1]), uint8(v[3*i+2]), 255
	}
	return img
}

func tinyRequest() Request {
	return Request{Prompt: "a photo of a cat", NegativePrompt: "blurry", Width: 32, Height: 32, Steps: 8,
		CFGScale: 7, Seed: 42, Sampler: "euler", RNG: "cpu", Compat: "diffusers"}
}

// maxPixelDiff compares an image with a reference in [0, 1] (HWC floats).
func maxPixelDiff(img *image.RGBA, ref []float32) float64 {
	worst := 0.0
	for i := 0; i < len(ref)/3; i++ {
		for c := 0; c < 3; c++ {
			d := math.Abs(float64(img.Pix[4*i+c]) - float64(ref[3*i+c])*255)
			worst = math.Max(worst, d)
		}
	}
	return worst
}

func TestGenerateTxt2imgMatchesDiffusers(t *testing.T) {
	m := loadTiny(t, tinyModel)
	info := m.Info()
	if info.Family != "sd1" || info.Granularity != 8 || info.UNetInChannels != 4 {
		t.Fatalf("unexpected model info %+v", info)
	}
	var steps []int
	req := tinyRequest()
	var phases []Phase
	req.Progress = func(p Progress) {
		if p.Phase == PhaseSample {
			steps = append(steps, p.Step)
		} else if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Seeds[0] != 42 || res.Images[0].Bounds().Dx() != 32 {
		t.Fatalf("unexpected result %d images, seeds %v", len(res.Images), res.Seeds)
	}
	if len(steps) != 8 || steps[7] != 8 {
		t.Fatalf("progress steps %v", steps)
	}
	if len(phases) != 2 || phases[0] != PhaseEncode || phases[1] != PhaseDecode {
		t.Fatalf("phases %v, want [encode decode]", phases)
	}
	// diffusers rounds to 8 bits the same way; allow one level for float noise
	if d := maxPixelDiff(res.Images[0], refTensor(t, "t2i_euler_s42_image")); d > 1.01 {
		t.Fatalf("max pixel difference from diffusers %.2f", d)
	}
}

// SDXL base through the binding, with and without the size conditioning
// fields, against StableDiffusionXLPipeline's images.
func TestGenerateSDXLMatchesDiffusers(t *testing.T) {
	m := loadTiny(t, tinySDXL)
	if info := m.Info(); info.Family != "sdxl" {
		t.Fatalf("family %q, want sdxl", info.Family)
	}
	req := tinyRequest()
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(res.Images[0], refTensorIn(t, tinySDXLRef, "xl_t2i_euler_s42_image")); d > 1.01 {
		t.Fatalf("max pixel difference from diffusers %.2f", d)
	}
	req.OriginalWidth, req.OriginalHeight = 64, 96
	req.CropLeft, req.CropTop = 4, 8
	req.TargetWidth, req.TargetHeight = 24, 40
	micro, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(micro.Images[0], refTensorIn(t, tinySDXLRef, "xl_t2i_micro_s42_image")); d > 1.01 {
		t.Fatalf("size conditioning: max pixel difference from diffusers %.2f", d)
	}
	if string(micro.Images[0].Pix) == string(res.Images[0].Pix) {
		t.Fatal("the size conditioning did not change the image")
	}
	batch := tinyRequest()
	batch.Sampler, batch.BatchCount, batch.OneGenerator = "euler_a", 2, true
	both, err := m.Generate(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := refTensorIn(t, tinySDXLRef, "xl_t2i_batch2_eulera_s42_image")
	for i, img := range both.Images {
		if d := maxPixelDiff(img, want[i*32*32*3:(i+1)*32*32*3]); d > 1.01 || both.Seeds[i] != 42 {
			t.Fatalf("one generator: image %d differs from diffusers by %.2f, seed %d", i, d, both.Seeds[i])
		}
	}
	req.NegativeSize = &SizeConditioning{OriginalWidth: 48, OriginalHeight: 64, CropLeft: 6, CropTop: 2,
		TargetWidth: 24, TargetHeight: 16}
	neg, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(neg.Images[0], refTensorIn(t, tinySDXLRef, "xl_t2i_negsize_s42_image")); d > 1.01 {
		t.Fatalf("negative size conditioning: max pixel difference from diffusers %.2f", d)
	}
}

// The SDXL refiner on its own (img2img) with the aesthetic scores and size
// conditioning set, against StableDiffusionXLImg2ImgPipeline.
func TestGenerateSDXLRefinerMatchesDiffusers(t *testing.T) {
	m := loadTiny(t, tinyRefiner)
	if info := m.Info(); info.Family != "sdxl-refiner" {
		t.Fatalf("family %q, want sdxl-refiner", info.Family)
	}
	req := tinyRequest()
	req.NegativePrompt = ""
	req.Steps, req.Strength, req.InitImage = 10, 0.6, initImage(t)
	req.AestheticScore, req.NegativeAestheticScore = 7.5, 1
	req.OriginalWidth, req.OriginalHeight, req.CropLeft, req.CropTop = 40, 48, 8, 4
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(res.Images[0], refTensorIn(t, tinySDXLRef, "xlr_i2i_aes_s42_image")); d > 1.01 {
		t.Fatalf("max pixel difference from diffusers %.2f", d)
	}
	if res.Params.AestheticScore != 7.5 {
		t.Fatalf("params %+v", res.Params)
	}
	req.AestheticScore, req.NegativeAestheticScore = 0, 0 // the defaults, 6 and 2.5
	def, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if def.Params.AestheticScore != 6 || def.Params.NegativeAestheticScore != 2.5 {
		t.Fatalf("default aesthetic scores %g / %g", def.Params.AestheticScore, def.Params.NegativeAestheticScore)
	}
	if string(def.Images[0].Pix) == string(res.Images[0].Pix) {
		t.Fatal("the aesthetic scores did not change the image")
	}
}

// Two-stage SDXL: the refiner loaded beside the base takes over at the
// switch, as diffusers' denoising_end / denoising_start.
func TestGenerateSDXLBaseThenRefiner(t *testing.T) {
	lib := loadLib(t)
	m, err := lib.LoadModel(tinySDXL, ModelOptions{Threads: 2, Refiner: tinyRefiner})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info := m.Info(); info.Family != "sdxl" || info.RefinerFamily != "sdxl-refiner" {
		t.Fatalf("info %+v", info)
	}
	req := tinyRequest()
	req.RefinerSwitch = 0.75
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(res.Images[0], refTensorIn(t, tinySDXLRef, "xl_2stage_s42_image")); d > 1.01 {
		t.Fatalf("max pixel difference from diffusers %.2f", d)
	}
	req.RefinerSwitch = 1 // the base alone
	alone, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(alone.Images[0], refTensorIn(t, tinySDXLRef, "xl_t2i_euler_s42_image")); d > 1.01 {
		t.Fatalf("switch 1: max pixel difference from the base alone %.2f", d)
	}
	if _, err := lib.LoadModel(tinyModel, ModelOptions{Refiner: tinyRefiner}); err == nil {
		t.Fatal("a refiner beside an SD 1.x model was accepted")
	}
}

func TestGenerateImg2imgMatchesDiffusers(t *testing.T) {
	m := loadTiny(t, tinyModel)
	req := tinyRequest()
	req.Steps = 10
	req.Strength = 0.6
	req.InitImage = initImage(t)
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(res.Images[0], refTensor(t, "i2i_euler_s42_image")); d > 1.01 {
		t.Fatalf("max pixel difference from diffusers %.2f", d)
	}
}

func TestGenerateBatchAndInpaint(t *testing.T) {
	m := loadTiny(t, tinyModel)
	req := tinyRequest()
	req.Compat = ""
	req.RNG = "cuda"
	req.Steps = 3
	req.BatchCount = 2
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Seeds[1] != 43 {
		t.Fatalf("batch: %d images, seeds %v", len(res.Images), res.Seeds)
	}
	req.BatchCount = 1
	req.Seed = 43
	one, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(one.Images[0].Pix) != string(res.Images[1].Pix) {
		t.Fatal("image 2 of a batch differs from a single run with seed + 1")
	}

	// inpaint on the regular and on the 9-channel model
	mask := image.NewGray(image.Rect(0, 0, 32, 32))
	for y := 0; y < 32; y++ {
		for x := 16; x < 32; x++ {
			mask.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	req.InitImage = initImage(t)
	req.Mask = mask
	req.Strength = 1
	if _, err := m.Generate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	im := loadTiny(t, tinyInpaintModel)
	if im.Info().UNetInChannels != 9 {
		t.Fatalf("inpaint model info %+v", im.Info())
	}
	if _, err := im.Generate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// a mask of the wrong size
	req.Mask = image.NewGray(image.Rect(0, 0, 16, 16))
	if _, err := m.Generate(context.Background(), req); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("wrong-size mask gave %v", err)
	}
}

func TestGenerateBadRequests(t *testing.T) {
	m := loadTiny(t, tinyModel)
	for _, tc := range []struct {
		name string
		mod  func(*Request)
	}{
		{"unknown sampler", func(r *Request) { r.Sampler = "nope" }},
		{"unknown scheduler", func(r *Request) { r.Scheduler = "nope" }},
		{"negative width", func(r *Request) { r.Width = -32 }},
		{"not a multiple of 8", func(r *Request) { r.Width = 36 }},
		{"strength", func(r *Request) { r.InitImage = initImage(t); r.Strength = 1.5 }},
	} {
		req := tinyRequest()
		tc.mod(&req)
		_, err := m.Generate(context.Background(), req)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if _, err := loadLib(t).LoadModel(filepath.Join(t.TempDir(), "missing.safetensors"), ModelOptions{}); err == nil {
		t.Fatal("a missing model loaded")
	}
}

func TestGenerateCancelWithinOneStep(t *testing.T) {
	m := loadTiny(t, tinyModel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := tinyRequest()
	req.Steps = 500
	last := 0
	req.Progress = func(p Progress) {
		if p.Phase != PhaseSample {
			return
		}
		last = p.Step
		if p.Step == 2 {
			cancel()
		}
	}
	_, err := m.Generate(ctx, req)
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrCanceled and context.Canceled", err)
	}
	// context.AfterFunc sets the C flag from another goroutine, so the step
	// already running may finish: at most one more step.
	if last < 2 || last > 3 {
		t.Fatalf("ran to step %d after canceling at step 2", last)
	}
	// the model works normally afterwards
	res, err := m.Generate(context.Background(), tinyRequest())
	if err != nil {
		t.Fatal(err)
	}
	if d := maxPixelDiff(res.Images[0], refTensor(t, "t2i_euler_s42_image")); d > 1.01 {
		t.Fatalf("after cancel: max pixel difference %.2f", d)
	}
	// a closed model refuses politely
	m.Close()
	if _, err := m.Generate(context.Background(), tinyRequest()); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed model gave %v", err)
	}
}

// Generate calls on one model from several goroutines are serialised and
// give the same images as one after the other.
func TestGenerateConcurrentCallsOnOneModel(t *testing.T) {
	m := loadTiny(t, tinyModel)
	req := tinyRequest()
	req.Steps = 3
	want, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := m.Generate(context.Background(), req)
			if err == nil && string(res.Images[0].Pix) != string(want.Images[0].Pix) {
				err = errors.New("different image")
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
}
