package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sd-go-project/sd-go/binding"
)

var (
	tinyModel        = filepath.Join("..", "..", "testdata", "pipeline", "tiny_sd1")
	tinyInpaintModel = filepath.Join("..", "..", "testdata", "pipeline", "tiny_sd1_inpaint")
)

func tinyArgs(out string, extra ...string) []string {
	args := []string{"run", "-m", tinyModel, "-p", "a photo of a cat", "-n", "blurry", "-W", "32", "-H", "32",
		"--steps", "4", "-t", "2", "-o", out}
	return append(args, extra...)
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testImages(t *testing.T, dir string, maskW int) (initPath, maskPath string) {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 8), uint8((x + y) * 4), 255})
		}
	}
	mask := image.NewGray(image.Rect(0, 0, maskW, 32))
	for y := 0; y < 32; y++ {
		for x := maskW / 2; x < maskW; x++ {
			mask.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	initPath, maskPath = filepath.Join(dir, "init.png"), filepath.Join(dir, "mask.png")
	writePNG(t, initPath, img)
	writePNG(t, maskPath, mask)
	return
}

func readBack(t *testing.T, path string) (image.Image, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a valid image: %v", path, err)
	}
	params, err := readParameters(b)
	if err != nil {
		t.Fatal(err)
	}
	return img, params
}

func TestRunTxt2imgWritesPNGWithParameters(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cat.png")
	code, _, errs := runCLI(t, tinyArgs(out, "-s", "7", "--sampler", "euler", "--cfg-scale", "5.5")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img, params := readBack(t, out)
	if img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
		t.Fatalf("image is %v", img.Bounds())
	}
	want := "a photo of a cat\nNegative prompt: blurry\nSteps: 4, Sampler: Euler, CFG scale: 5.5, Seed: 7, Size: 32x32, Model: tiny_sd1, Version: sd-go " + version
	if params != want {
		t.Fatalf("parameters\n%q\nwant\n%q", params, want)
	}
	// no temp files left behind
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries, want 1", len(entries))
	}
	// --no-metadata
	out2 := filepath.Join(dir, "plain.png")
	if code, _, errs := runCLI(t, tinyArgs(out2, "-s", "7", "--sampler", "euler", "--cfg-scale", "5.5", "--no-metadata")...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img2, params2 := readBack(t, out2)
	if params2 != "" {
		t.Fatalf("--no-metadata wrote %q", params2)
	}
	if !sameImage(img, img2) {
		t.Fatal("the same seed gave a different image")
	}
}

func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

func TestRunImg2imgJPEGAndInpaint(t *testing.T) {
	dir := t.TempDir()
	initPath, maskPath := testImages(t, dir, 32)
	out := filepath.Join(dir, "i2i.jpg")
	code, _, errs := runCLI(t, tinyArgs(out, "-i", initPath, "--strength", "0.5", "--prompt-file", writeFile(t, dir, "p.txt", "a dog (unicode: é ✓)\n"), "-p", "")...)
	if code != exitUsage || !strings.Contains(errs, "not both") {
		t.Fatalf("--prompt with --prompt-file: exit %d: %s", code, errs)
	}
	code, _, errs = runCLI(t, "run", "-m", tinyModel, "--prompt-file", filepath.Join(dir, "p.txt"), "-W", "32", "-H", "32",
		"--steps", "4", "-o", out, "-i", initPath, "--strength", "0.5")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	_, params := readBack(t, out)
	if !strings.HasPrefix(params, "a dog (unicode: é ✓)\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 32x32, Model: tiny_sd1, Denoising strength: 0.5,") {
		t.Fatalf("JPEG parameters %q", params)
	}
	for _, model := range []string{tinyModel, tinyInpaintModel} {
		out := filepath.Join(dir, "inpaint-"+filepath.Base(model)+".png")
		// no -W/-H: the size of the init image
		code, _, errs := runCLI(t, "run", "-m", model, "-p", "a cat", "--steps", "3", "-o", out,
			"-i", initPath, "--mask", maskPath, "--strength", "1")
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", model, code, errs)
		}
		if _, params := readBack(t, out); !strings.Contains(params, "Denoising strength: 1") {
			t.Fatalf("inpaint parameters %q", params)
		}
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunQuantizedAtLoad(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "f32.png"), filepath.Join(dir, "q8.png")
	if code, _, errs := runCLI(t, tinyArgs(a)...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI(t, tinyArgs(b, "--type", "q8_0")...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ia, _ := readBack(t, a)
	ib, _ := readBack(t, b)
	// q8_0 changes the numbers a little, not the picture
	worst := 0
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			ra, ga, ba, _ := ia.At(x, y).RGBA()
			rb, gb, bb, _ := ib.At(x, y).RGBA()
			for _, d := range []int{int(ra>>8) - int(rb>>8), int(ga>>8) - int(gb>>8), int(ba>>8) - int(bb>>8)} {
				if d < 0 {
					d = -d
				}
				worst = max(worst, d)
			}
		}
	}
	if worst > 8 {
		t.Fatalf("q8_0 image differs from f32 by up to %d levels", worst)
	}
	t.Logf("q8_0 vs as stored: max difference %d levels", worst)
}

func TestRunBatchPattern(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runCLI(t, tinyArgs(filepath.Join(dir, "img-%d.png"), "-b", "2", "-s", "100", "--steps", "2")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for i, seed := range []string{"Seed: 100", "Seed: 101"} {
		_, params := readBack(t, filepath.Join(dir, "img-"+string(rune('1'+i))+".png"))
		if !strings.Contains(params, seed) {
			t.Fatalf("image %d parameters %q lack %q", i+1, params, seed)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	initPath, _ := testImages(t, dir, 32)
	_, badMask := testImages(t, t.TempDir(), 16)
	junk := writeFile(t, dir, "junk.png", "not an image")
	out := filepath.Join(dir, "o.png")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing model", []string{"run", "-m", filepath.Join(dir, "nope.safetensors"), "-p", "x", "-o", out}, exitFailure, "nope.safetensors"},
		{"no model", []string{"run", "-p", "x"}, exitUsage, "needs a model"},
		{"unreadable image", tinyArgs(out, "-i", junk), exitFailure, "init image"},
		{"mask of the wrong size", tinyArgs(out, "-i", initPath, "--mask", badMask), exitFailure, "mask is 16x32"},
		{"unknown sampler", tinyArgs(out, "--sampler", "nope"), exitFailure, "sampler"},
		{"negative size", tinyArgs(out, "-W", "-32"), exitUsage, "positive"},
		{"size not a multiple", tinyArgs(out, "-W", "36"), exitFailure, "multiples of 8"},
		{"missing output folder", tinyArgs(filepath.Join(dir, "no", "such", "o.png")), exitFailure, "does not exist"},
		{"read-only output", tinyArgs("/proc/sd-go-test.png"), exitFailure, "cannot write"},
		{"stray argument", append(tinyArgs(out), "extra"), exitUsage, "no arguments"},
		{"unknown type", tinyArgs(out, "--type", "q9_9"), exitUsage, "q9_9"},
		{"unknown compat", tinyArgs(out, "--compat", "comfy"), exitUsage, "--compat"},
		{"unknown prediction", tinyArgs(out, "--prediction", "x0"), exitFailure, "prediction"},
		{"crop without a comma", tinyArgs(out, "--crop", "4"), exitUsage, "--crop"},
		{"strength 0", tinyArgs(out, "-i", initPath, "--strength", "0"), exitUsage, "--strength"},
		{"refiner switch without a refiner", tinyArgs(out, "--refiner-switch", "0.5"), exitUsage, "--refiner"},
		{"refiner beside SD 1.x", tinyArgs(out, "--refiner", filepath.Join("..", "..", "testdata", "pipeline", "tiny_sdxl_refiner")), exitFailure, "refiner"},
		{"original size not WxH", tinyArgs(out, "--original-size", "64by96"), exitUsage, "--original-size"},
		{"target size too large", tinyArgs(out, "--target-size", "99999x8"), exitUsage, "--target-size"},
	} {
		code, _, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", tc.name, code, tc.code, errs, tc.msg)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a failed run left an output file")
	}
}

func TestRunInterruptExits130WithoutOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "never.png")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(1500 * time.Millisecond)
		cancel()
	}()
	var o, e bytes.Buffer
	start := time.Now()
	code := run(ctx, append([]string{"sd-go"}, tinyArgs(out, "--steps", "10000")...), &o, &e)
	if code != exitInterrupted {
		t.Fatalf("exit %d, stderr %q", code, e.String())
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("took %v to stop", time.Since(start))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("interrupted run left %d files", len(entries))
	}
}

// refImage reads a [1, H, W, 3] float image of testdata/pipeline/ref.safetensors.
func refImage(t *testing.T, name string) []float32 {
	t.Helper()
	return refImageIn(t, "ref.safetensors", name)
}

// refImageIn reads an F32 reference tensor of testdata/pipeline/file.
func refImageIn(t *testing.T, file, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pipeline", file))
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
	if err := json.Unmarshal(hdr[name], &e); err != nil || e.Dtype != "F32" {
		t.Fatalf("reference %s: %v", name, err)
	}
	data := b[8+n+uint64(e.Offsets[0]) : 8+n+uint64(e.Offsets[1])]
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

func TestRunReproducesDiffusers(t *testing.T) {
	out := filepath.Join(t.TempDir(), "d.png")
	code, _, errs := runCLI(t, "run", "-m", tinyModel, "-p", "a photo of a cat", "-n", "blurry", "-W", "32", "-H", "32",
		"--steps", "20", "--sampler", "dpm++2m", "--rng", "cpu", "--compat", "diffusers", "-s", "42", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img, params := readBack(t, out)
	if !strings.Contains(params, "Sampler: DPM++ 2M") || !strings.Contains(params, "RNG: CPU") {
		t.Fatalf("parameters %q", params)
	}
	if worst := levelsFrom(img, refImage(t, "t2i_dpmpp2m_s42_image")); worst > 1.01 {
		t.Fatalf("differs from diffusers' DPM-Solver++ 2M image by up to %.2f levels", worst)
	}
}

// An SDXL model with the size conditioning flags reproduces
// StableDiffusionXLPipeline with original_size, crops_coords_top_left and
// target_size.
func TestRunSDXLSizeConditioning(t *testing.T) {
	out := filepath.Join(t.TempDir(), "xl.png")
	code, _, errs := runCLI(t, "run", "-m", filepath.Join("..", "..", "testdata", "pipeline", "tiny_sdxl"),
		"-p", "a photo of a cat", "-n", "blurry", "-W", "32", "-H", "32", "--steps", "8", "--sampler", "euler",
		"--rng", "cpu", "--compat", "diffusers", "-s", "42", "--original-size", "64x96", "--crop", "4,8",
		"--target-size", "24x40", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img, _ := readBack(t, out)
	if worst := levelsFrom(img, refImageIn(t, "sdxl_ref.safetensors", "xl_t2i_micro_s42_image")); worst > 1.01 {
		t.Fatalf("differs from diffusers' SDXL image by up to %.2f levels", worst)
	}
	code, _, errs = runCLI(t, "run", "-m", filepath.Join("..", "..", "testdata", "pipeline", "tiny_sdxl"),
		"-p", "a photo of a cat", "-n", "blurry", "-W", "32", "-H", "32", "--steps", "8", "--sampler", "euler",
		"--rng", "cpu", "--compat", "diffusers", "-s", "42", "--original-size", "64x96", "--crop", "4,8",
		"--target-size", "24x40", "--negative-original-size", "48x64", "--negative-crop", "6,2",
		"--negative-target-size", "24x16", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img, _ = readBack(t, out)
	if worst := levelsFrom(img, refImageIn(t, "sdxl_ref.safetensors", "xl_t2i_negsize_s42_image")); worst > 1.01 {
		t.Fatalf("negative sizes: differs from diffusers' SDXL image by up to %.2f levels", worst)
	}
}

// --refiner with --refiner-switch: two-stage SDXL as diffusers' base with
// denoising_end and refiner with denoising_start; the parameters name the
// refiner and the switch as A1111 does.
func TestRunSDXLWithRefiner(t *testing.T) {
	out := filepath.Join(t.TempDir(), "xl2.png")
	pipe := filepath.Join("..", "..", "testdata", "pipeline")
	code, _, errs := runCLI(t, "run", "-m", filepath.Join(pipe, "tiny_sdxl"), "--refiner",
		filepath.Join(pipe, "tiny_sdxl_refiner"), "--refiner-switch", "0.75", "-p", "a photo of a cat", "-n", "blurry",
		"-W", "32", "-H", "32", "--steps", "8", "--sampler", "euler", "--rng", "cpu", "--compat", "diffusers", "-s", "42",
		"-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img, params := readBack(t, out)
	if worst := levelsFrom(img, refImageIn(t, "sdxl_ref.safetensors", "xl_2stage_s42_image")); worst > 1.01 {
		t.Fatalf("differs from diffusers' two-stage image by up to %.2f levels", worst)
	}
	if !strings.Contains(params, "Refiner: tiny_sdxl_refiner, Refiner switch at: 0.75") {
		t.Fatalf("parameters %q", params)
	}
	// a refiner file: A1111's "Refiner: NAME [HASH]", and the same image
	gguf := filepath.Join(t.TempDir(), "refiner.gguf")
	if code, _, errs := runCLI(t, "quantize", "f32", filepath.Join(pipe, "tiny_sdxl_refiner"), gguf); code != exitOK {
		t.Fatalf("quantize: exit %d: %s", code, errs)
	}
	out2 := filepath.Join(t.TempDir(), "xl2f.png")
	code, _, errs = runCLI(t, "run", "-m", filepath.Join(pipe, "tiny_sdxl"), "--refiner", gguf, "--refiner-switch",
		"0.75", "-p", "a photo of a cat", "-n", "blurry", "-W", "32", "-H", "32", "--steps", "8", "--sampler", "euler",
		"--rng", "cpu", "--compat", "diffusers", "-s", "42", "-o", out2)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	img2, params2 := readBack(t, out2)
	if want := "Refiner: refiner [" + fileShortHash(t, gguf) + "]"; !strings.Contains(params2, want) {
		t.Fatalf("parameters %q lack %q", params2, want)
	}
	if !bytes.Equal(img.(*image.RGBA).Pix, img2.(*image.RGBA).Pix) {
		t.Fatal("the refiner as a file gave another image than its folder")
	}
}

// fileShortHash is A1111's short hash of a file, computed here independently
// of the code under test: the first 10 hex digits of its SHA-256.
func fileShortHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

// levelsFrom is the largest difference, in 8-bit levels, between a 32x32
// image and a reference in [0, 1] (HWC floats).
func levelsFrom(img image.Image, want []float32) float64 {
	worst := 0.0
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			for c, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				worst = math.Max(worst, math.Abs(float64(v)-float64(want[(y*32+x)*3+c])*255))
			}
		}
	}
	return worst
}

// `run --type q4_0 MODEL` and `run` on the output of `quantize q4_0 MODEL`
// choose the same type for every tensor with the same converter: the images
// are byte-identical, for every tiny model (the diffusers folders' configs
// and tokenizers travel inside the GGUF file).
func TestRunTypeEqualsQuantizedFile(t *testing.T) {
	for _, m := range []string{"tiny_sd1", "tiny_sd1_inpaint", "tiny_sd2_v", "tiny_sdxl", "tiny_sdxl_refiner", "tiny_sdxl_inpaint"} {
		t.Run(m, func(t *testing.T) {
			model := filepath.Join("..", "..", "testdata", "pipeline", m)
			dir := t.TempDir()
			gguf := filepath.Join(dir, m+".q4_0.gguf")
			if code, _, errs := runCLI(t, "quantize", "q4_0", model, gguf); code != exitOK {
				t.Fatalf("quantize: exit %d: %s", code, errs)
			}
			args := func(model, out string, extra ...string) []string {
				a := []string{"run", "-m", model, "-p", "a photo of a cat", "-n", "blurry", "-W", "32", "-H", "32",
					"--steps", "3", "-t", "2", "-o", out}
				return append(a, extra...)
			}
			a, b, c := filepath.Join(dir, "load.png"), filepath.Join(dir, "file.png"), filepath.Join(dir, "f32.png")
			if code, _, errs := runCLI(t, args(model, a, "--type", "q4_0")...); code != exitOK {
				t.Fatalf("run --type q4_0: exit %d: %s", code, errs)
			}
			if code, _, errs := runCLI(t, args(gguf, b)...); code != exitOK {
				t.Fatalf("run on the quantized file: exit %d: %s", code, errs)
			}
			if code, _, errs := runCLI(t, args(model, c)...); code != exitOK {
				t.Fatalf("run: exit %d: %s", code, errs)
			}
			ia, _ := readBack(t, a)
			ib, _ := readBack(t, b)
			ic, _ := readBack(t, c)
			pa, pb, pc := ia.(*image.RGBA).Pix, ib.(*image.RGBA).Pix, ic.(*image.RGBA).Pix
			if !bytes.Equal(pa, pb) {
				t.Fatal("run --type q4_0 and run on the quantized file give different images")
			}
			if bytes.Equal(pa, pc) {
				t.Fatal("q4_0 gave the image of the stored weights: nothing was quantized")
			}
		})
	}
}

// `run --help` lists the samplers, schedulers and weight types the engine's
// catalog names, so a sampler added in C++ shows up with no Go change.
func TestRunHelpListsTheEngineCatalog(t *testing.T) {
	lib, err := binding.Load(binding.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := lib.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Samplers) < 8 || len(cat.Schedulers) < 5 {
		t.Fatalf("catalog lists too little: %+v", cat)
	}
	code, out, errs := runCLI(t, "run", "--help")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, group := range [][]string{cat.Samplers, cat.Schedulers, cat.WeightTypes} {
		if want := strings.Join(group, ", "); !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if want := "(default: \"" + cat.Defaults.Sampler + "\")"; !strings.Contains(out, want) {
		t.Errorf("help lacks the engine's default sampler %s:\n%s", want, out)
	}
}

// --vae-tiling on decodes in blended tiles: a valid image that differs a
// little from the whole decode; bad tiling settings are usage errors.
func TestRunVAETiling(t *testing.T) {
	dir := t.TempDir()
	whole, tiled := filepath.Join(dir, "whole.png"), filepath.Join(dir, "tiled.png")
	args := func(out string, extra ...string) []string {
		a := []string{"run", "-m", tinyModel, "-p", "a photo of a cat", "-W", "64", "-H", "64", "--steps", "3", "-t", "2",
			"-o", out}
		return append(a, extra...)
	}
	if code, _, errs := runCLI(t, args(whole, "--vae-tiling", "off")...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI(t, args(tiled, "--vae-tiling", "on", "--vae-tile-size", "32", "--vae-tile-overlap", "16")...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	a, _ := readBack(t, whole)
	b, _ := readBack(t, tiled)
	pa, pb := a.(*image.RGBA).Pix, b.(*image.RGBA).Pix
	if bytes.Equal(pa, pb) {
		t.Fatal("the tiled decode gave the whole decode's image")
	}
	var se float64
	for i := range pa {
		d := float64(pa[i]) - float64(pb[i])
		se += d * d
	}
	if psnr := 10 * math.Log10(255*255*float64(len(pa))/se); psnr < 25 {
		t.Fatalf("tiled image %.1f dB from the whole decode", psnr)
	}
	for _, bad := range [][]string{{"--vae-tiling", "sometimes"}, {"--vae-tile-size", "60"}, {"--vae-tile-overlap", "400"}} {
		code, _, errs := runCLI(t, args(filepath.Join(dir, "bad.png"), bad...)...)
		if code == exitOK || !strings.Contains(strings.ToLower(errs), "vae til") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errs)
		}
		if _, err := os.Stat(filepath.Join(dir, "bad.png")); err == nil {
			t.Errorf("%v: wrote an image", bad)
		}
	}
}

// bombPNG is a valid 1x1 PNG whose header claims w x h pixels (the IHDR CRC
// fixed up), as a decompression bomb would.
func bombPNG(t *testing.T, path string, w, h uint32) {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	// signature (8), IHDR length (4), "IHDR" (4), width, height, ...
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Hostile and careless inputs give a clear error and no output, never a
// runtime abort or a hang: images claiming huge sizes, unbounded or
// non-regular prompt files, a FIFO as the model, absurd thread counts.
func TestRunRefusesHostileInputs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.png")
	bomb := filepath.Join(dir, "bomb.png")
	bombPNG(t, bomb, 50000, 50000)
	init, _ := testImages(t, dir, 32)
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("cat, "), 300000), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "model.safetensors")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bomb as init image", tinyArgs(out, "-i", bomb), "claims 50000x50000"},
		{"bomb as mask", tinyArgs(out, "-i", init, "--mask", bomb), "claims 50000x50000"},
		{"prompt file of 1.5 MB", []string{"run", "-m", tinyModel, "--prompt-file", big, "-o", out}, "larger than"},
		{"prompt file /dev/zero", []string{"run", "-m", tinyModel, "--prompt-file", "/dev/zero", "-o", out}, "not a regular file"},
		{"FIFO as the model", []string{"run", "-m", fifo, "-p", "cat", "-W", "32", "-H", "32", "-o", out}, "not a regular file"},
		{"threads 100000", tinyArgs(out, "-t", "100000"), "--threads"},
		{"threads -3", tinyArgs(out, "-t", "-3"), "--threads"},
		{"seeds past the largest", tinyArgs(out, "-s", "9223372036854775807", "-b", "2"), "largest seed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			var code int
			var errs string
			go func() {
				defer close(done)
				code, _, errs = runCLI(t, c.args...)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("still running after 30 s")
			}
			if code == exitOK || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, stderr %q (want %q)", code, errs, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("wrote an output image")
			}
		})
	}
}

// Outputs that cannot or should not be written are refused before the
// generation (a folder, a symbolic link, a read-only file), and a batch is
// written whole or not at all.
func TestRunOutputChecksAndAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "folder.png")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.png")
	if err := os.Symlink(filepath.Join(dir, "missing", "x.png"), link); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(dir, "ro.png")
	if err := os.WriteFile(ro, []byte("old"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, want string }{
		{folder, "is a folder"}, {link, "symbolic link"}, {ro, "read-only"},
		// the second image of the batch would land on a folder
		{filepath.Join(dir, "b_%d.png"), "is a folder"},
	} {
		if c.out == filepath.Join(dir, "b_%d.png") {
			if err := os.Mkdir(filepath.Join(dir, "b_2.png"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		batch := "1"
		if strings.Contains(c.out, "%d") {
			batch = "2"
		}
		code, _, errs := runCLI(t, tinyArgs(c.out, "-b", batch)...)
		if code == exitOK || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q (want %q)", c.out, code, errs, c.want)
		}
		if strings.Contains(errs, "generated") {
			t.Errorf("%s: refused only after generating", c.out)
		}
	}
	if b, err := os.ReadFile(ro); err != nil || string(b) != "old" {
		t.Fatalf("the read-only file was replaced: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b_1.png")); err == nil {
		t.Fatal("the first image of a refused batch was written")
	}
	// writeAllOrNothing itself: a rename that fails removes what was written
	good, bad := filepath.Join(dir, "w1.png"), filepath.Join(dir, "w2.png")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAllOrNothing([]string{good, bad}, [][]byte{[]byte("1"), []byte("2")}); err == nil {
		t.Fatal("writing onto a non-empty folder succeeded")
	}
	if _, err := os.Stat(good); err == nil {
		t.Fatal("the first file stayed behind")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".sd-go-*.tmp")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

// The A1111 metadata names the checkpoint file by A1111's short hash (the
// first 10 hex digits of its SHA-256), and a --vae file by its own; a
// diffusers folder has no file hash.
func TestRunMetadataHashesModelAndVAE(t *testing.T) {
	dir := t.TempDir()
	gguf := filepath.Join(dir, "tiny.gguf")
	if code, _, errs := runCLI(t, "quantize", "f16", tinyModel, gguf); code != exitOK {
		t.Fatalf("quantize: exit %d: %s", code, errs)
	}
	vae := filepath.Join(dir, "vae.gguf") // a VAE as one file (its config travels inside)
	if code, _, errs := runCLI(t, "quantize", "f16", filepath.Join(tinyModel, "vae"), vae); code != exitOK {
		t.Fatalf("quantize the VAE: exit %d: %s", code, errs)
	}
	out := filepath.Join(dir, "a.png")
	args := []string{"run", "-m", gguf, "-p", "a cat", "-W", "32", "-H", "32", "--steps", "2", "-t", "2", "-o", out,
		"--vae", vae}
	if code, _, errs := runCLI(t, args...); code != exitOK {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	_, params := readBack(t, out)
	for _, want := range []string{"Model hash: " + fileShortHash(t, gguf) + ", Model: tiny, VAE hash: " + fileShortHash(t, vae)} {
		if !strings.Contains(params, want) {
			t.Fatalf("parameters %q lack %q", params, want)
		}
	}
	// a folder: no model hash
	out2 := filepath.Join(dir, "b.png")
	if code, _, errs := runCLI(t, tinyArgs(out2)...); code != exitOK {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	if _, params := readBack(t, out2); strings.Contains(params, "hash") {
		t.Fatalf("a folder got a hash: %q", params)
	}
}
