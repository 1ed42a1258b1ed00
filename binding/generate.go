package binding

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebitengine/purego"
)

// Request is one generation. A zero field takes the engine's default
// (Library.Catalog lists them: 512×512, 20 steps, CFG 7, euler_a, discrete,
// strength 0.75, ...); Seed is used as given (0 is a seed like any other).
//
// Modes: no InitImage is txt2img; an InitImage is img2img; an InitImage plus
// a Mask is inpainting (white = repaint). On an inpainting model (9 U-Net
// input channels) the mask becomes extra U-Net input; on a regular model the
// unmasked region is blended back after every step.
type Request struct {
	Prompt         string
	NegativePrompt string
	Width, Height  int
	Steps          int
	CFGScale       float64 // 1 runs one U-Net pass per step (no guidance)
	Seed           int64   // image b of the batch uses Seed + b
	BatchCount     int
	Sampler        string  // Catalog().Samplers lists the names
	Scheduler      string  // Catalog().Schedulers lists the names
	RNG            string  // "" = the model's (cuda or cpu)
	ClipSkip       int     // 0 = the model's default
	Strength       float64 // img2img and inpaint, in (0, 1]; 0 takes the default (0.75): a strength of 0 would change nothing
	InitImage      image.Image
	Mask           image.Image
	// Compat picks whose pipeline to reproduce: "a1111" (default, also
	// stable-diffusion.cpp) or "diffusers".
	Compat string
	// VAETiling decodes the image in overlapping, blended tiles: "auto"
	// (default: only when the whole decode does not fit the device), "on"
	// or "off". VAETileSize and VAETileOverlap are in output pixels
	// (multiples of 8; 0 takes the defaults, 512 and 64).
	VAETiling      string
	VAETileSize    int
	VAETileOverlap int
	// SDXL size conditioning, in pixels (other models ignore it): the
	// original size and the target size (0 takes the output size) and the
	// crop's top-left corner (default 0, 0). diffusers' original_size,
	// crops_coords_top_left and target_size.
	OriginalWidth, OriginalHeight int
	CropLeft, CropTop             int
	TargetWidth, TargetHeight     int
	// NegativeSize, when set, is the negative side's size conditioning
	// (diffusers' negative_original_size, negative_crops_coords_top_left,
	// negative_target_size; sizes of 0 take the output size); nil gives the
	// negative side the positive side's values.
	NegativeSize *SizeConditioning
	// SDXL refiner: the aesthetic score of the positive and the negative
	// side (0 takes the defaults, 6 and 2.5).
	AestheticScore, NegativeAestheticScore float64
	// RefinerSwitch, with a refiner loaded (ModelOptions.Refiner), is the
	// share of the schedule the base samples before the refiner takes over,
	// in (0, 1]; 1 uses the base alone, 0 the default (0.8). Compat
	// "diffusers" splits as diffusers' denoising_end/denoising_start (the
	// refiner restarts the sampler); "a1111" swaps the model inside one
	// sampler run, as A1111 does.
	RefinerSwitch float64
	// OneGenerator draws the whole batch from one generator seeded with
	// Seed, as diffusers' num_images_per_prompt (Compat "diffusers",
	// txt2img only); by default image b has its own, seeded with Seed + b.
	OneGenerator bool
	// Progress, if set, is called when a phase begins and after every
	// sampler step, on the goroutine that called Generate. A panic in it
	// cancels the generation, which then returns an error that holds the
	// panic's value.
	Progress func(Progress)
}

// SizeConditioning is one side's SDXL size conditioning, in pixels.
type SizeConditioning struct {
	OriginalWidth, OriginalHeight int
	CropLeft, CropTop             int
	TargetWidth, TargetHeight     int
}

// Phase is a stage of a generation.
type Phase int

const (
	// PhaseEncode begins: prompts (and the init image) are encoded. Step 0, Total 1.
	PhaseEncode Phase = 0
	// PhaseSample: a sampler step finished; Step counts 1..Total over the whole batch.
	PhaseSample Phase = 1
	// PhaseDecode begins for image Step (0-based) of Total (the batch count).
	PhaseDecode Phase = 2
)

// String names the phase ("encode", "sample", ...).
func (p Phase) String() string {
	switch p {
	case PhaseEncode:
		return "encode"
	case PhaseSample:
		return "sample"
	case PhaseDecode:
		return "decode"
	}
	return fmt.Sprintf("phase %d", int(p))
}

// Progress reports a phase starting or a sampler step finishing.
type Progress struct {
	Phase       Phase
	Step, Total int
	// Elapsed is the time since sampling started (PhaseSample) or since
	// the generation started (the other phases).
	Elapsed time.Duration
}

// Result holds the generated images and the parameters actually used.
type Result struct {
	Images []*image.RGBA
	Seeds  []int64 // the seed of each image, as the engine used it
	Params Request // the request with the engine's defaults filled in
}

// Request keys (enum sdgo_request_key in sdgo.h).
const (
	reqPrompt         = 0
	reqNegativePrompt = 1
	reqSampler        = 2
	reqScheduler      = 3
	reqRNG            = 4
	reqCompat         = 5
	reqVAETiling      = 6
	reqWidth          = 16
	reqHeight         = 17
	reqSteps          = 18
	reqSeed           = 19
	reqBatch          = 20
	reqClipSkip       = 21
	reqVAETileSize    = 22
	reqVAETileOverlap = 23
	reqOriginalWidth  = 24
	reqOriginalHeight = 25
	reqCropLeft       = 26
	reqCropTop        = 27
	reqTargetWidth    = 28
	reqTargetHeight   = 29
	reqOneGenerator   = 30
	reqNegOrigWidth   = 64
	reqNegOrigHeight  = 65
	reqNegCropLeft    = 66
	reqNegCropTop     = 67
	reqNegTargetWidth = 68
	reqNegTargetHeigh = 69
	reqCFGScale       = 32
	reqStrength       = 33
	reqAesthetic      = 35
	reqNegAesthetic   = 36
	reqRefinerSwitch  = 37
	reqInitImage      = 48
	reqMask           = 49
)

// Progress routing: one C callback for the whole process (purego callbacks
// are never freed), with user_data an id into this registry.
var (
	progressOnce     sync.Once
	progressCallback uintptr
	progressNextID   atomic.Uintptr
	progressFuncs    sync.Map // uintptr -> *progressState
)

type progressState struct {
	ctx      context.Context
	f        func(Progress)
	panicked any // set when f panicked; the generation is then canceled
}

func progressTrampoline() uintptr {
	progressOnce.Do(func() {
		progressCallback = purego.NewCallback(func(phase, step, total int32, elapsedMs int64, ud uintptr) int32 {
			v, ok := progressFuncs.Load(ud)
			if !ok {
				return 0
			}
			return v.(*progressState).call(Progress{Phase: Phase(phase), Step: int(step), Total: int(total),
				Elapsed: time.Duration(elapsedMs) * time.Millisecond})
		})
	})
	return progressCallback
}

// call runs the user's function; a panic must not unwind through the C
// frames below, so it is caught here and turned into a cancel.
func (p *progressState) call(pr Progress) (rc int32) {
	if p.panicked != nil {
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			p.panicked = r
			rc = 1
		}
	}()
	p.f(pr)
	if p.ctx.Err() != nil {
		return 1 // canceled meanwhile: stop now rather than after the flag is seen
	}
	return 0
}

// setRequest fills an engine request from req: set fields only, so that
// zero fields keep the engine's defaults.
func setRequest(f *functions, r uintptr, req *Request) error {
	check := func(rc int32) error {
		if rc != 0 {
			return &Error{Op: "request", Status: Status(rc), Msg: f.requestError(r)}
		}
		return nil
	}
	strs := []struct {
		key  int32
		name string
		v    string
	}{{reqPrompt, "prompt", req.Prompt}, {reqNegativePrompt, "negative prompt", req.NegativePrompt},
		{reqSampler, "sampler", req.Sampler}, {reqScheduler, "scheduler", req.Scheduler}, {reqRNG, "RNG", req.RNG},
		{reqCompat, "compat", req.Compat}, {reqVAETiling, "VAE tiling", req.VAETiling}}
	for _, s := range strs {
		if s.v == "" {
			continue
		}
		if strings.IndexByte(s.v, 0) >= 0 {
			return &Error{Op: "request", Status: StatusInvalidArgument, Msg: s.name + " contains a NUL byte"}
		}
		if err := check(f.requestSetStr(r, s.key, s.v)); err != nil {
			return err
		}
	}
	ints := []struct {
		key int32
		v   int64
	}{{reqWidth, int64(req.Width)}, {reqHeight, int64(req.Height)}, {reqSteps, int64(req.Steps)},
		{reqBatch, int64(req.BatchCount)}, {reqClipSkip, int64(req.ClipSkip)},
		{reqVAETileSize, int64(req.VAETileSize)}, {reqVAETileOverlap, int64(req.VAETileOverlap)},
		{reqOriginalWidth, int64(req.OriginalWidth)}, {reqOriginalHeight, int64(req.OriginalHeight)},
		{reqCropLeft, int64(req.CropLeft)}, {reqCropTop, int64(req.CropTop)},
		{reqTargetWidth, int64(req.TargetWidth)}, {reqTargetHeight, int64(req.TargetHeight)}}
	for _, s := range ints {
		if s.v == 0 {
			continue
		}
		if err := check(f.requestSetI64(r, s.key, s.v)); err != nil {
			return err
		}
	}
	if err := check(f.requestSetI64(r, reqSeed, req.Seed)); err != nil {
		return err
	}
	if req.OneGenerator {
		if err := check(f.requestSetI64(r, reqOneGenerator, 1)); err != nil {
			return err
		}
	}
	if n := req.NegativeSize; n != nil {
		for _, s := range []struct {
			key int32
			v   int
		}{{reqNegOrigWidth, n.OriginalWidth}, {reqNegOrigHeight, n.OriginalHeight}, {reqNegCropLeft, n.CropLeft},
			{reqNegCropTop, n.CropTop}, {reqNegTargetWidth, n.TargetWidth}, {reqNegTargetHeigh, n.TargetHeight}} {
			if err := check(f.requestSetI64(r, s.key, int64(s.v))); err != nil {
				return err
			}
		}
	}
	for _, s := range []struct {
		key int32
		v   float64
	}{{reqCFGScale, req.CFGScale}, {reqStrength, req.Strength}, {reqAesthetic, req.AestheticScore},
		{reqNegAesthetic, req.NegativeAestheticScore}, {reqRefinerSwitch, req.RefinerSwitch}} {
		if s.v == 0 {
			continue
		}
		if err := check(f.requestSetF64(r, s.key, s.v)); err != nil {
			return err
		}
	}
	if req.InitImage != nil {
		px, w, h := rgbBytes(req.InitImage)
		if err := check(f.requestSetImage(r, reqInitImage, px, int32(w), int32(h), 3)); err != nil {
			return err
		}
	}
	if req.Mask != nil {
		px, w, h := grayBytes(req.Mask)
		if err := check(f.requestSetImage(r, reqMask, px, int32(w), int32(h), 1)); err != nil {
			return err
		}
	}
	return nil
}

// Session is one generation's worth of engine state on a model: a backend
// with its threads and memory arenas. The weights are the model's. A
// session runs one generation at a time (a second call waits); use several
// sessions, or Model.Generate with ModelOptions.Sessions, to run several.
type Session struct {
	lib  *Library
	info ModelInfo
	rng  string // the model's default RNG ("" = the engine's)
	mu   sync.Mutex
	h    uintptr // sdgo_session*; 0 once closed
}

// Close frees the session. It waits for a running Generate and is safe to
// call more than once.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != 0 {
		s.lib.fn.sessionFree(s.h)
		s.h = 0
	}
	return nil
}

// Generate runs one request on the session; see Model.Generate.
func (s *Session) Generate(ctx context.Context, req Request) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cat, err := s.lib.Catalog()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == 0 {
		return nil, ErrClosed
	}
	f := &s.lib.fn
	r := f.requestNew()
	if r == 0 {
		return nil, ErrOutOfMemory
	}
	defer f.requestFree(r)
	if err := setRequest(f, r, &req); err != nil {
		return nil, err
	}

	// cancellation: a C flag set from context.AfterFunc
	tok := f.cancelNew()
	if tok == 0 {
		return nil, ErrOutOfMemory
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		f.cancelTrigger(tok)
		close(done)
	})
	defer func() {
		if !stop() {
			<-done // the trigger ran or is running: wait before freeing the token
		}
		f.cancelFree(tok)
	}()

	var cb, id uintptr
	var ps *progressState
	if req.Progress != nil {
		cb = progressTrampoline()
		id = progressNextID.Add(1)
		ps = &progressState{ctx: ctx, f: req.Progress}
		progressFuncs.Store(id, ps)
		defer progressFuncs.Delete(id)
	}
	var res uintptr
	rc := f.sessionGenerate(s.h, r, tok, cb, id, &res)
	if ps != nil && ps.panicked != nil {
		if res != 0 {
			f.resultFree(res)
		}
		return nil, fmt.Errorf("sdgo: generate: the progress callback panicked: %v", ps.panicked)
	}
	if rc != 0 {
		e := &Error{Op: "generate", Status: Status(rc), Msg: f.sessionError(s.h)}
		if Status(rc) == StatusCanceled && ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", e, ctx.Err())
		}
		return nil, e
	}
	defer f.resultFree(res)
	n := int(f.resultCount(res))
	w, h := int(f.resultWidth(res)), int(f.resultHeight(res))
	out := &Result{Params: cat.fill(req, s.rng)}
	px := make([]byte, w*h*3)
	for b := 0; b < n; b++ {
		var needed uintptr
		if rc := f.resultImage(res, int32(b), px, uintptr(len(px)), &needed); rc != 0 {
			return nil, &Error{Op: "generate", Status: Status(rc), Msg: "reading the result image"}
		}
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for i, j := 0, 0; i < len(px); i, j = i+3, j+4 {
			img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = px[i], px[i+1], px[i+2], 255
		}
		out.Images = append(out.Images, img)
		out.Seeds = append(out.Seeds, f.resultSeed(res, int32(b)))
	}
	return out, nil
}

// rgbBytes flattens img to interleaved RGB8 (alpha composited over black).
func rgbBytes(img image.Image) ([]byte, int, int) {
	b := img.Bounds()
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	px := make([]byte, 0, b.Dx()*b.Dy()*3)
	for i := 0; i < len(rgba.Pix); i += 4 {
		px = append(px, rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2])
	}
	return px, b.Dx(), b.Dy()
}

// grayBytes converts img to 8-bit luminance.
func grayBytes(img image.Image) ([]byte, int, int) {
	b := img.Bounds()
	px := make([]byte, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			px = append(px, color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
		}
	}
	return px, b.Dx(), b.Dy()
}
