package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/sd-go-project/sd-go/binding"
	"github.com/sd-go-project/sd-go/quantize"
)

// weightOptions turns --type into load options: f32 converts everything at
// load; a quantized type becomes the quantize package's per-tensor plan, the
// one `sd-go quantize` writes, so that both give the same weights.
func weightOptions(lib *binding.Library, modelPath, typ string, mo *binding.ModelOptions) error {
	switch typ {
	case "":
		return nil
	case "f32":
		mo.WeightType = "f32"
		return nil
	}
	t, err := quantize.ParseType(typ)
	if err != nil {
		return usagef("--type: %v", err)
	}
	pol := quantize.Policy{Target: t}
	if mo.WeightPlan, err = quantize.LoadPlan(lib, modelPath, pol); err != nil {
		return err
	}
	if mo.VAE != "" {
		if mo.VAEWeightPlan, err = quantize.LoadPlan(lib, mo.VAE, pol); err != nil {
			return fmt.Errorf("VAE: %w", err)
		}
	}
	if mo.Refiner != "" {
		if mo.RefinerWeightPlan, err = quantize.LoadPlan(lib, mo.Refiner, pol); err != nil {
			return fmt.Errorf("refiner: %w", err)
		}
	}
	return nil
}

func runCommand() *cli.Command {
	// The defaults and the names come from the engine (its catalog); when no
	// engine can be found the flags show none and the engine's apply anyway.
	var d binding.Request
	samplers, schedulers, types, tiling := "(see the engine)", "(see the engine)", "f32", "auto, on, off"
	if lib, err := binding.Load(binding.LoadOptions{}); err == nil {
		if cat, err := lib.Catalog(); err == nil {
			d = cat.Defaults
			samplers, schedulers = strings.Join(cat.Samplers, ", "), strings.Join(cat.Schedulers, ", ")
			types = strings.Join(cat.WeightTypes, ", ")
			tiling = strings.Join(cat.VAETiling, ", ")
		}
	}
	return &cli.Command{
		Name:      "run",
		Usage:     "generate images: txt2img, img2img (--init-img) and inpainting (--init-img with --mask)",
		UsageText: "sd-go run -m MODEL -p PROMPT [options]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "checkpoint file or diffusers folder", TakesFile: true},
			&cli.StringFlag{Name: "prompt", Aliases: []string{"p"}, Usage: "the prompt (A1111 weighting: (word:1.2), [word], BREAK)"},
			&cli.StringFlag{Name: "prompt-file", Usage: "read the prompt from a file", TakesFile: true},
			&cli.StringFlag{Name: "negative-prompt", Aliases: []string{"n"}, Usage: "the negative prompt"},
			&cli.IntFlag{Name: "width", Aliases: []string{"W"}, Value: d.Width, Usage: "image width (default with --init-img: its width)"},
			&cli.IntFlag{Name: "height", Aliases: []string{"H"}, Value: d.Height, Usage: "image height (default with --init-img: its height)"},
			&cli.IntFlag{Name: "steps", Value: d.Steps, Usage: "sampling steps"},
			&cli.Float64Flag{Name: "cfg-scale", Value: d.CFGScale, Usage: "classifier-free guidance scale"},
			&cli.Int64Flag{Name: "seed", Aliases: []string{"s"}, Value: d.Seed, Usage: "seed; -1 picks a random one (printed)"},
			&cli.StringFlag{Name: "sampler", Aliases: []string{"sampling-method"}, Value: d.Sampler, Usage: samplers},
			&cli.StringFlag{Name: "scheduler", Value: d.Scheduler, Usage: schedulers},
			&cli.IntFlag{Name: "batch-count", Aliases: []string{"b"}, Value: max(d.BatchCount, 1), Usage: "number of images (seeds increase by one)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "output.png", Usage: "output file; .jpg/.jpeg writes JPEG, else PNG; %d is the image number in a batch", TakesFile: true},
			&cli.StringFlag{Name: "init-img", Aliases: []string{"i"}, Usage: "init image for img2img / inpainting", TakesFile: true},
			&cli.Float64Flag{Name: "strength", Value: d.Strength, Usage: "img2img denoising strength in (0, 1]"},
			&cli.StringFlag{Name: "mask", Usage: "inpainting mask (white = repaint), the size of the init image", TakesFile: true},
			&cli.StringFlag{Name: "vae", Usage: "VAE file replacing the model's own", TakesFile: true},
			&cli.StringFlag{Name: "refiner", Usage: "SDXL refiner (file or folder) that takes over the end of the schedule from the SDXL base", TakesFile: true},
			&cli.Float64Flag{Name: "refiner-switch", Value: d.RefinerSwitch, Usage: "with --refiner: the share of the schedule the base samples, in (0, 1]"},
			&cli.StringFlag{Name: "type", Usage: "convert weights at load, choosing each tensor's type as sd-go quantize does: `TYPE`, one of " + types + " (default: as stored)"},
			&cli.StringFlag{Name: "backend", Value: "cpu", Usage: "where to run: cpu, auto (the first discrete GPU, then an integrated one, then the CPU) or a backend `sd-go version` lists"},
			&cli.IntFlag{Name: "device", Usage: "device index within the backend (`sd-go version` lists them)"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Value: 0, Usage: "worker threads (default: physical cores)"},
			&cli.IntFlag{Name: "clip-skip", Value: 0, Usage: "A1111 clip skip (0: the model's default)"},
			&cli.StringFlag{Name: "rng", Value: d.RNG, Usage: "noise generator: cuda (A1111 GPU seeds) or cpu (torch CPU, diffusers)"},
			&cli.StringFlag{Name: "prediction", Usage: "override the model's prediction type: epsilon or v (SD 2.x 768-v checkpoints)"},
			&cli.StringFlag{Name: "compat", Value: d.Compat, Usage: "whose pipeline to reproduce: a1111 (also stable-diffusion.cpp) or diffusers (use with --rng cpu)"},
			&cli.StringFlag{Name: "vae-tiling", Value: d.VAETiling, Usage: "decode the image in overlapping, blended tiles: " + tiling + " (auto: only when the whole decode does not fit the device)"},
			&cli.IntFlag{Name: "vae-tile-size", Value: d.VAETileSize, Usage: "VAE tile side in pixels (a multiple of 8)"},
			&cli.IntFlag{Name: "vae-tile-overlap", Value: d.VAETileOverlap, Usage: "pixels shared by neighbouring VAE tiles (a multiple of 8, at most half a tile)"},
			&cli.StringFlag{Name: "original-size", Usage: "SDXL size conditioning: the original image size `WxH` (default: the output size)"},
			&cli.StringFlag{Name: "crop", Usage: "SDXL size conditioning: the crop's top-left corner `X,Y` (default 0,0)"},
			&cli.Float64Flag{Name: "aesthetic-score", Value: d.AestheticScore, Usage: "SDXL refiner: the aesthetic score conditioning"},
			&cli.Float64Flag{Name: "negative-aesthetic-score", Value: d.NegativeAestheticScore, Usage: "SDXL refiner: the negative side's aesthetic score"},
			&cli.StringFlag{Name: "negative-original-size", Usage: "SDXL: the negative side's original size `WxH` (default: the positive side's)"},
			&cli.StringFlag{Name: "negative-crop", Usage: "SDXL: the negative side's crop corner `X,Y` (default: the positive side's)"},
			&cli.StringFlag{Name: "negative-target-size", Usage: "SDXL: the negative side's target size `WxH` (default: the positive side's)"},
			&cli.StringFlag{Name: "target-size", Usage: "SDXL size conditioning: the target size `WxH` (default: the output size)"},
			&cli.BoolFlag{Name: "one-generator", Usage: "draw the whole batch from one generator, as diffusers' num_images_per_prompt (--compat diffusers, txt2img)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print more"},
			&cli.BoolFlag{Name: "quiet", Usage: "print nothing but errors"},
			&cli.BoolFlag{Name: "no-metadata", Usage: "do not write the A1111 parameters into the image"},
		},
		Action: runAction,
	}
}

type runLogger struct {
	w       io.Writer
	quiet   bool
	verbose bool
	tty     bool
}

func (l runLogger) printf(format string, args ...any) {
	if !l.quiet {
		fmt.Fprintf(l.w, "sd-go: "+format+"\n", args...)
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("run takes no arguments, got %q (flags go before or after, but every value needs its flag)", c.Args().First())
	}
	stderr := c.App.ErrWriter
	lg := runLogger{w: stderr, quiet: c.Bool("quiet"), verbose: c.Bool("verbose")}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		lg.tty = true
	}

	lib, err := binding.Load(binding.LoadOptions{Path: c.String("lib")})
	if err != nil {
		return err
	}
	cat, err := lib.Catalog()
	if err != nil {
		return err
	}
	def := cat.Defaults

	modelPath := c.String("model")
	if modelPath == "" {
		return usagef("run needs a model (-m FILE)")
	}
	prompt := c.String("prompt")
	if pf := c.String("prompt-file"); pf != "" {
		if c.IsSet("prompt") {
			return usagef("give either --prompt or --prompt-file, not both")
		}
		p, err := readPromptFile(pf)
		if err != nil {
			return fmt.Errorf("prompt file: %w", err)
		}
		prompt = p
	}
	if c.Bool("quiet") && c.Bool("verbose") {
		return usagef("--quiet and --verbose exclude each other")
	}
	// More threads than cores only slow the work down (and a huge count
	// exhausts memory): at most four per logical core.
	if th, most := c.Int("threads"), 4*runtime.NumCPU(); th < 0 || th > most {
		return usagef("--threads must be from 0 (one per physical core) to %d (4 per logical core here), got %d", most, th)
	}
	batch := intOr(c, "batch-count", def.BatchCount)
	if batch < 1 {
		return usagef("--batch-count must be at least 1, got %d", batch)
	}
	if intOr(c, "width", def.Width) <= 0 || intOr(c, "height", def.Height) <= 0 {
		return usagef("width and height must be positive, got %dx%d", intOr(c, "width", def.Width), intOr(c, "height", def.Height))
	}
	if intOr(c, "steps", def.Steps) <= 0 {
		return usagef("--steps must be at least 1, got %d", intOr(c, "steps", def.Steps))
	}
	if c.IsSet("mask") && !c.IsSet("init-img") {
		return usagef("--mask needs --init-img")
	}
	outputs, err := outputPaths(c.String("output"), batch)
	if err != nil {
		return err
	}
	for _, o := range outputs {
		if err := checkOutputPath(o); err != nil {
			return err
		}
	}

	req := binding.Request{
		Prompt:                 prompt,
		NegativePrompt:         c.String("negative-prompt"),
		Width:                  intOr(c, "width", def.Width),
		Height:                 intOr(c, "height", def.Height),
		Steps:                  intOr(c, "steps", def.Steps),
		CFGScale:               floatOr(c, "cfg-scale", def.CFGScale),
		Seed:                   seedOr(c, def.Seed),
		BatchCount:             batch,
		Sampler:                stringOr(c, "sampler", def.Sampler),
		Scheduler:              stringOr(c, "scheduler", def.Scheduler),
		RNG:                    c.String("rng"),
		ClipSkip:               c.Int("clip-skip"),
		Strength:               floatOr(c, "strength", def.Strength),
		Compat:                 stringOr(c, "compat", def.Compat),
		VAETiling:              stringOr(c, "vae-tiling", def.VAETiling),
		VAETileSize:            intOr(c, "vae-tile-size", def.VAETileSize),
		VAETileOverlap:         intOr(c, "vae-tile-overlap", def.VAETileOverlap),
		AestheticScore:         floatOr(c, "aesthetic-score", def.AestheticScore),
		NegativeAestheticScore: floatOr(c, "negative-aesthetic-score", def.NegativeAestheticScore),
		OneGenerator:           c.Bool("one-generator"),
	}
	if c.IsSet("refiner-switch") {
		if !c.IsSet("refiner") {
			return usagef("--refiner-switch needs --refiner")
		}
		req.RefinerSwitch = c.Float64("refiner-switch")
		if !(req.RefinerSwitch > 0 && req.RefinerSwitch <= 1) {
			return usagef("--refiner-switch must be in (0, 1], got %g", req.RefinerSwitch)
		}
	}
	var size binding.SizeConditioning
	if err := sizeFlags(c, "", cat.Limits.MaxSide, &size); err != nil {
		return err
	}
	req.OriginalWidth, req.OriginalHeight = size.OriginalWidth, size.OriginalHeight
	req.CropLeft, req.CropTop = size.CropLeft, size.CropTop
	req.TargetWidth, req.TargetHeight = size.TargetWidth, size.TargetHeight
	if c.IsSet("negative-original-size") || c.IsSet("negative-crop") || c.IsSet("negative-target-size") {
		n := size // what the negative flags leave out is the positive side's
		if err := sizeFlags(c, "negative-", cat.Limits.MaxSide, &n); err != nil {
			return err
		}
		req.NegativeSize = &n
	}
	if req.Compat != "a1111" && req.Compat != "diffusers" {
		return usagef("--compat must be a1111 or diffusers, got %q", req.Compat)
	}
	if !(req.CFGScale > 0) {
		return usagef("--cfg-scale must be positive, got %g", req.CFGScale)
	}
	if req.Seed == -1 {
		req.Seed = rand.Int64N(1 << 32)
		lg.printf("seed: %d", req.Seed)
	} else if req.Seed < 0 {
		return usagef("--seed must be >= 0 or -1 (random), got %d", req.Seed)
	}
	// Image b uses seed + b: every one of them must be a seed this command
	// accepts, so that each image can be made again from its metadata.
	if req.Seed > math.MaxInt64-int64(req.BatchCount-1) {
		return usagef("--seed %d with %d images would pass the largest seed (%d); use a smaller seed", req.Seed,
			req.BatchCount, int64(math.MaxInt64))
	}
	if p := c.String("init-img"); p != "" {
		img, err := readImage(p, cat.Limits.MaxSide)
		if err != nil {
			return fmt.Errorf("init image: %w", err)
		}
		req.InitImage = img
		// without -W/-H the output takes the init image's size
		if !c.IsSet("width") {
			req.Width = img.Bounds().Dx()
		}
		if !c.IsSet("height") {
			req.Height = img.Bounds().Dy()
		}
		if !(req.Strength > 0 && req.Strength <= 1) {
			return usagef("--strength must be in (0, 1], got %g (0 would leave the image unchanged)", req.Strength)
		}
	} else if c.IsSet("strength") {
		return usagef("--strength needs --init-img")
	}
	if p := c.String("mask"); p != "" {
		img, err := readImage(p, cat.Limits.MaxSide)
		if err != nil {
			return fmt.Errorf("mask: %w", err)
		}
		req.Mask = img
	}

	if lg.verbose {
		lib.SetLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	} else if !lg.quiet {
		lib.SetLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	t0 := time.Now()
	if lg.tty && !lg.quiet {
		fmt.Fprintf(stderr, "loading %s ...\r", modelPath)
	}
	mo := binding.ModelOptions{VAE: c.String("vae"), RNG: c.String("rng"), Prediction: c.String("prediction"),
		Threads: c.Int("threads"), Backend: c.String("backend"), Device: c.Int("device"), Refiner: c.String("refiner")}
	if err := weightOptions(lib, modelPath, c.String("type"), &mo); err != nil {
		return err
	}
	model, err := lib.LoadModel(modelPath, mo)
	if err != nil {
		return err
	}
	defer model.Close()
	info := model.Info()
	lg.printf("loaded %s (%s %s, %s) in %.1fs", modelPath, info.Family, info.Variant, info.Source, time.Since(t0).Seconds())

	var bar *progressbar.ProgressBar
	var lastPct int
	sampleStart := time.Now()
	req.Progress = func(p binding.Progress) {
		if lg.quiet {
			return
		}
		switch p.Phase {
		case binding.PhaseEncode:
			if lg.tty {
				fmt.Fprintf(stderr, "encoding prompt ...\r")
			} else if lg.verbose {
				lg.printf("encoding prompt (at %.1fs)", p.Elapsed.Seconds())
			}
			return
		case binding.PhaseDecode:
			if bar != nil {
				_ = bar.Finish()
				bar = nil
			}
			if lg.tty {
				fmt.Fprintf(stderr, "decoding image %d/%d ...\r", p.Step+1, p.Total)
			} else if lg.verbose {
				lg.printf("decoding image %d/%d (at %.1fs)", p.Step+1, p.Total, p.Elapsed.Seconds())
			}
			return
		}
		if lg.tty {
			if bar == nil {
				bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("sampling"), progressbar.OptionShowCount(),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("step"),
					progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
			}
			_ = bar.Set(p.Step)
			return
		}
		pct := p.Step * 100 / p.Total
		if pct/25 > lastPct/25 || p.Step == p.Total {
			lastPct = pct
			lg.printf("sampling step %d/%d (%.2f s/step)", p.Step, p.Total, p.Elapsed.Seconds()/float64(p.Step))
		}
	}
	// A1111's short model hash for the metadata, read while the engine
	// works (a multi-GB file takes seconds), only when metadata is written.
	var hashes chan fileHash
	if !c.Bool("no-metadata") {
		hashes = make(chan fileHash, 3)
		go func() { hashes <- shortHash(c.Context, modelPath) }()
		go func() { hashes <- shortHash(c.Context, c.String("vae")) }()
		go func() { hashes <- shortHash(c.Context, c.String("refiner")) }()
	}
	res, err := model.Generate(c.Context, req)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	lg.printf("generated %d image(s) in %.1fs", len(res.Images), time.Since(sampleStart).Seconds())

	modelName := strings.TrimSuffix(filepath.Base(modelPath), filepath.Ext(modelPath))
	var meta metadata
	meta.model = modelName
	if p := c.String("refiner"); p != "" {
		meta.refiner = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		meta.switchAt = req.RefinerSwitch
		if meta.switchAt == 0 {
			meta.switchAt = cat.Defaults.RefinerSwitch
		}
	}
	if hashes != nil {
		for range 3 {
			h := <-hashes
			switch h.path {
			case "":
			case modelPath:
				meta.modelHash = h.hash
			case c.String("refiner"):
				meta.refinerHash = h.hash
			default:
				meta.vaeHash = h.hash
			}
		}
	}
	files := make([][]byte, len(res.Images))
	for i, img := range res.Images {
		var params string
		if !c.Bool("no-metadata") {
			params = a1111Parameters(res.Params, res.Seeds[i], meta)
		}
		if files[i], err = encodeImage(outputs[i], img, params); err != nil {
			return err
		}
	}
	if err := writeAllOrNothing(outputs, files); err != nil {
		return err
	}
	for _, o := range outputs {
		lg.printf("wrote %s", o)
	}
	return nil
}

// checkOutputPath finds out before the (long) generation whether path can
// be written: its folder exists and takes new files, and path itself is
// absent or a writable regular file (not a folder, a symbolic link or a
// read-only file, which would be silently replaced).
func checkOutputPath(path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("output folder %s does not exist", dir)
	}
	if err := checkWritable(dir); err != nil {
		return fmt.Errorf("cannot write into %s: %w", dir, err)
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output %s: %w", path, err)
	case st.IsDir():
		return fmt.Errorf("output %s is a folder; give a file name", path)
	case st.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("output %s is a symbolic link; give the file it points to", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("output %s is not a regular file", path)
	case st.Mode().Perm()&0o200 == 0:
		return fmt.Errorf("output %s exists and is read-only", path)
	}
	return nil
}

// writeAllOrNothing writes every file to a temp file beside its path, then
// renames them all into place; on any failure it removes the temp files and
// the images already renamed, so a batch appears whole or not at all.
func writeAllOrNothing(paths []string, data [][]byte) error {
	tmps := make([]string, len(paths))
	cleanup := func() {
		for _, t := range tmps {
			if t != "" {
				os.Remove(t)
			}
		}
	}
	for i, p := range paths {
		t, err := writeTemp(filepath.Dir(p), data[i])
		if err != nil {
			cleanup()
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		tmps[i] = t
	}
	for i, p := range paths {
		if err := os.Rename(tmps[i], p); err != nil {
			for j := 0; j < i; j++ {
				os.Remove(paths[j])
			}
			tmps = tmps[i:]
			cleanup()
			return fmt.Errorf("cannot write %s: %w (no image of the batch was kept)", p, err)
		}
	}
	return nil
}

// writeTemp writes data to a new temp file in dir (mode 0644) and returns
// its name.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".sd-go-*.tmp")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr != nil {
		os.Remove(tmp)
		return "", werr
	}
	return tmp, nil
}

// outputPaths expands a %d pattern (1-based image number); a batch without
// one gets _N before the extension.
func outputPaths(pattern string, n int) ([]string, error) {
	if pattern == "" {
		return nil, usagef("--output must not be empty")
	}
	has := strings.Contains(pattern, "%d")
	if strings.Count(strings.ReplaceAll(pattern, "%d", ""), "%") > 0 {
		return nil, usagef("--output may only contain %%d as a pattern, got %q", pattern)
	}
	var out []string
	for i := 1; i <= n; i++ {
		switch {
		case has:
			out = append(out, strings.ReplaceAll(pattern, "%d", strconv.Itoa(i)))
		case n == 1:
			out = append(out, pattern)
		default:
			ext := filepath.Ext(pattern)
			out = append(out, strings.TrimSuffix(pattern, ext)+"_"+strconv.Itoa(i)+ext)
		}
	}
	return out, nil
}

// readImage decodes a PNG or JPEG whose declared size is at most maxSide
// on each side; the size is read from the header first, so that a small
// file claiming a huge picture is refused before anything is allocated.
func readImage(path string, maxSide int) (image.Image, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxSide || cfg.Height > maxSide {
		return nil, fmt.Errorf("%s: the image claims %dx%d pixels; at most %d on a side", path, cfg.Width, cfg.Height, maxSide)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// openRegular opens a regular file for reading; a FIFO, device or socket is
// refused without blocking.
func openRegular(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return os.Open(path)
}

// maxPromptFile bounds what --prompt-file reads (A1111 prompts are a few KB;
// the engine refuses more than 64 chunks of 75 tokens anyway).
const maxPromptFile = 1 << 20

func readPromptFile(path string) (string, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPromptFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxPromptFile {
		return "", fmt.Errorf("%s is larger than %d KiB", path, maxPromptFile>>10)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// A1111's sampler names ("PNG Info" reads them back).
var a1111Samplers = map[string]string{
	"euler": "Euler", "euler_a": "Euler a", "heun": "Heun", "dpm2": "DPM2", "dpm++2s_a": "DPM++ 2S a",
	"dpm++2m": "DPM++ 2M", "lcm": "LCM", "ddim": "DDIM",
}

// a1111Parameters renders the "parameters" text in A1111's layout.
// metadata is what the A1111 parameters say about the files used.
type metadata struct {
	model       string // the checkpoint's name (file name without extension)
	modelHash   string // A1111's short hash of the checkpoint file, "" for a folder
	vaeHash     string // the same for a --vae file
	refiner     string // the --refiner's name, "" without one
	refinerHash string // A1111's short hash of a --refiner file
	switchAt    float64
}

type fileHash struct{ path, hash string }

// shortHash is A1111's short hash of a file: the first 10 hex digits of its
// SHA-256 ("" for an empty path, a folder, or a file that cannot be read;
// the hash only labels the image).
func shortHash(ctx context.Context, path string) fileHash {
	if path == "" {
		return fileHash{}
	}
	f, err := openRegular(path)
	if err != nil {
		return fileHash{path: path}
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if ctx.Err() != nil {
			return fileHash{path: path}
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return fileHash{path: path}
		}
	}
	return fileHash{path: path, hash: hex.EncodeToString(h.Sum(nil))[:10]}
}

func a1111Parameters(r binding.Request, seed int64, meta metadata) string {
	var b strings.Builder
	b.WriteString(r.Prompt)
	if r.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: " + r.NegativePrompt)
	}
	sampler := a1111Samplers[r.Sampler]
	if sampler == "" {
		sampler = r.Sampler
	}
	fields := []string{
		fmt.Sprintf("Steps: %d", r.Steps),
		"Sampler: " + sampler,
	}
	if r.Scheduler != "" && r.Scheduler != "discrete" {
		fields = append(fields, "Schedule type: "+strings.ToUpper(r.Scheduler[:1])+r.Scheduler[1:])
	}
	fields = append(fields,
		"CFG scale: "+strconv.FormatFloat(r.CFGScale, 'g', -1, 64),
		fmt.Sprintf("Seed: %d", seed),
		fmt.Sprintf("Size: %dx%d", r.Width, r.Height),
	)
	if meta.modelHash != "" {
		fields = append(fields, "Model hash: "+meta.modelHash)
	}
	fields = append(fields, "Model: "+meta.model)
	if meta.vaeHash != "" {
		fields = append(fields, "VAE hash: "+meta.vaeHash)
	}
	if meta.refiner != "" {
		name := meta.refiner
		if meta.refinerHash != "" {
			name += " [" + meta.refinerHash + "]" // A1111: "Refiner: NAME [HASH]"
		}
		fields = append(fields, "Refiner: "+name, "Refiner switch at: "+strconv.FormatFloat(meta.switchAt, 'g', -1, 64))
	}
	if r.InitImage != nil {
		fields = append(fields, "Denoising strength: "+strconv.FormatFloat(r.Strength, 'g', -1, 64))
	}
	if r.ClipSkip > 1 {
		fields = append(fields, fmt.Sprintf("Clip skip: %d", r.ClipSkip))
	}
	if r.RNG == "cpu" {
		fields = append(fields, "RNG: CPU")
	}
	fields = append(fields, "Version: sd-go "+version)
	b.WriteString("\n" + strings.Join(fields, ", "))
	return b.String()
}

// encodeImage writes PNG (with a tEXt/iTXt "parameters" chunk) or JPEG (with
// a COM segment), chosen by the extension.
func encodeImage(path string, img image.Image, params string) ([]byte, error) {
	var buf bytes.Buffer
	ext := strings.ToLower(filepath.Ext(path))
	if ext == ".jpg" || ext == ".jpeg" {
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
			return nil, err
		}
		b := buf.Bytes()
		if params == "" {
			return b, nil
		}
		if len(params) > 65533 {
			return nil, errors.New("parameters too long for a JPEG comment")
		}
		seg := []byte{0xFF, 0xFE, 0, 0}
		binary.BigEndian.PutUint16(seg[2:], uint16(len(params)+2))
		seg = append(seg, params...)
		out := append([]byte{}, b[:2]...) // SOI
		out = append(out, seg...)
		return append(out, b[2:]...), nil
	}
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if params == "" {
		return b, nil
	}
	var chunkType string
	var data []byte
	if latin1(params) {
		chunkType = "tEXt"
		data = append([]byte("parameters\x00"), toLatin1(params)...)
	} else {
		chunkType = "iTXt" // keyword, 0, compression flag 0, method 0, no language, no translated keyword
		data = append([]byte("parameters\x00\x00\x00\x00\x00"), params...)
	}
	chunk := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(chunk, uint32(len(data)))
	copy(chunk[4:], chunkType)
	chunk = append(chunk, data...)
	crc := crc32.ChecksumIEEE(chunk[4:])
	chunk = binary.BigEndian.AppendUint32(chunk, crc)
	const ihdrEnd = 8 + 8 + 13 + 4 // signature + IHDR header + data + crc
	out := append([]byte{}, b[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, b[ihdrEnd:]...), nil
}

func latin1(s string) bool {
	for _, r := range s {
		if r > 0xFF {
			return false
		}
	}
	return true
}

func toLatin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = append(out, byte(r))
	}
	return out
}

// readParameters returns the A1111 "parameters" text of a PNG or JPEG
// written by encodeImage ("" when there is none).
func readParameters(b []byte) (string, error) {
	if bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		for p := 8; p+12 <= len(b); {
			n := int(binary.BigEndian.Uint32(b[p:]))
			if p+12+n > len(b) {
				return "", errors.New("truncated PNG chunk")
			}
			typ, data := string(b[p+4:p+8]), b[p+8:p+8+n]
			switch typ {
			case "tEXt":
				if k, v, ok := bytes.Cut(data, []byte{0}); ok && string(k) == "parameters" {
					r := make([]rune, len(v))
					for i, c := range v {
						r[i] = rune(c)
					}
					return string(r), nil
				}
			case "iTXt":
				if k, v, ok := bytes.Cut(data, []byte{0}); ok && string(k) == "parameters" && len(v) >= 2 && v[0] == 0 {
					rest := v[2:]
					for i := 0; i < 2; i++ { // language tag, translated keyword
						_, rest, _ = bytes.Cut(rest, []byte{0})
					}
					return string(rest), nil
				}
			}
			p += 12 + n
		}
		return "", nil
	}
	if bytes.HasPrefix(b, []byte{0xFF, 0xD8}) {
		for p := 2; p+4 <= len(b) && b[p] == 0xFF; {
			marker := b[p+1]
			n := int(binary.BigEndian.Uint16(b[p+2:]))
			if marker == 0xDA || p+2+n > len(b) {
				break
			}
			if marker == 0xFE {
				return string(b[p+4 : p+2+n]), nil
			}
			p += 2 + n
		}
		return "", nil
	}
	return "", errors.New("not a PNG or JPEG file")
}

// checkWritable finds out before the (long) generation whether files can
// be created in dir, by creating and removing an empty temp file there.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".sd-go-*.tmp")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// The value of a flag the user set, else the engine's default (the flag's
// own default shows it, but the help may have been built without an engine).
func intOr(c *cli.Context, name string, def int) int {
	if c.IsSet(name) {
		return c.Int(name)
	}
	return def
}

func floatOr(c *cli.Context, name string, def float64) float64 {
	if c.IsSet(name) {
		return c.Float64(name)
	}
	return def
}

func stringOr(c *cli.Context, name string, def string) string {
	if c.IsSet(name) {
		return c.String(name)
	}
	return def
}

func seedOr(c *cli.Context, def int64) int64 {
	if c.IsSet("seed") {
		return c.Int64("seed")
	}
	return def
}

// sizeFlags reads the SDXL size flags --PREFIXoriginal-size WxH,
// --PREFIXcrop X,Y and --PREFIXtarget-size WxH that are given into s.
func sizeFlags(c *cli.Context, prefix string, max int, s *binding.SizeConditioning) error {
	for _, f := range []struct {
		name string
		sep  string
		a, b *int
	}{{prefix + "original-size", "x", &s.OriginalWidth, &s.OriginalHeight},
		{prefix + "crop", ",", &s.CropLeft, &s.CropTop},
		{prefix + "target-size", "x", &s.TargetWidth, &s.TargetHeight}} {
		if v := c.String(f.name); v != "" {
			if err := parsePair(v, f.sep, max, f.a, f.b); err != nil {
				return usagef("--%s: %v", f.name, err)
			}
		}
	}
	return nil
}

// parsePair reads "AsepB" (e.g. 1024x768 or 16,0) into two integers from 0
// to max.
func parsePair(v, sep string, max int, a, b *int) error {
	l, r, ok := strings.Cut(strings.ToLower(strings.TrimSpace(v)), sep)
	if !ok {
		return fmt.Errorf("want two numbers separated by %q, got %q", sep, v)
	}
	x, err1 := strconv.Atoi(strings.TrimSpace(l))
	y, err2 := strconv.Atoi(strings.TrimSpace(r))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("want two whole numbers separated by %q, got %q", sep, v)
	}
	if x < 0 || y < 0 || (max > 0 && (x > max || y > max)) {
		return fmt.Errorf("each must be from 0 to %d, got %q", max, v)
	}
	*a, *b = x, y
	return nil
}
