package binding

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebitengine/purego"
)

// Request is one generation. Zero fields take the defaults listed; Seed is
// used as given (0 is a seed like any other).
//
// Modes: no InitImage is txt2img; an InitImage is img2img; an InitImage plus
// a Mask is inpainting (white = repaint). On an inpainting model (9 U-Net
// input channels) the mask becomes extra U-Net input; on a regular model the
// unmasked region is blended back after every step.
type Request struct {
	Prompt         string
	NegativePrompt string
	Width, Height  int     // 512
	Steps          int     // 20
	CFGScale       float64 // 7.0
	Seed           int64   // image b of the batch uses Seed + b
	BatchCount     int     // 1
	Sampler        string  // "euler_a"; also euler, heun, dpm2, dpm++2s_a, dpm++2m, lcm, ddim
	Scheduler      string  // "discrete"; also karras, exponential, sgm_uniform, simple
	RNG            string  // "" = the model's (cuda or cpu)
	ClipSkip       int     // 0 = the model's default
	Strength       float64 // 0.75; img2img and inpaint
	InitImage      image.Image
	Mask           image.Image
	// Compat picks whose pipeline to reproduce: "a1111" (default, also
	// stable-diffusion.cpp) or "diffusers".
	Compat string
	// Progress, if set, is called when a phase begins and after every
	// sampler step, on the goroutine that called Generate.
	Progress func(Progress)
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
	Seeds  []int64
	Params Request // the request with defaults filled in
}

// WithDefaults returns r with zero fields set to their defaults.
func (r Request) WithDefaults() Request {
	if r.Width == 0 {
		r.Width = 512
	}
	if r.Height == 0 {
		r.Height = 512
	}
	if r.Steps == 0 {
		r.Steps = 20
	}
	if r.CFGScale == 0 {
		r.CFGScale = 7.0
	}
	if r.BatchCount == 0 {
		r.BatchCount = 1
	}
	if r.Sampler == "" {
		r.Sampler = "euler_a"
	}
	if r.Scheduler == "" {
		r.Scheduler = "discrete"
	}
	if r.Strength == 0 {
		r.Strength = 0.75
	}
	return r
}

// Request keys (enum sdgo_request_key in sdgo.h).
const (
	reqPrompt         = 0
	reqNegativePrompt = 1
	reqSampler        = 2
	reqScheduler      = 3
	reqRNG            = 4
	reqCompat         = 5
	reqWidth          = 16
	reqHeight         = 17
	reqSteps          = 18
	reqSeed           = 19
	reqBatch          = 20
	reqClipSkip       = 21
	reqCFGScale       = 32
	reqStrength       = 33
	reqInitImage      = 48
	reqMask           = 49
)

// progress routing: one C callback for the whole process, user_data is an
// id into this registry.
var (
	progressOnce     sync.Once
	progressCallback uintptr
	progressNextID   atomic.Uintptr
	progressFuncs    sync.Map // uintptr -> func(Progress)
)

func progressTrampoline() uintptr {
	progressOnce.Do(func() {
		progressCallback = purego.NewCallback(func(phase, step, total int32, elapsedMs int64, ud uintptr) {
			if f, ok := progressFuncs.Load(ud); ok {
				f.(func(Progress))(Progress{Phase: Phase(phase), Step: int(step), Total: int(total),
					Elapsed: time.Duration(elapsedMs) * time.Millisecond})
			}
		})
	})
	return progressCallback
}

// Generate runs one request. Canceling ctx stops the generation within one
// sampler step (the error then matches ErrCanceled and ctx.Err()); the model
// stays usable.
func (m *Model) Generate(ctx context.Context, req Request) (*Result, error) {
	req = req.WithDefaults()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == 0 {
		return nil, ErrClosed
	}
	f := &m.lib.fn
	r := f.requestNew()
	if r == 0 {
		return nil, ErrOutOfMemory
	}
	defer f.requestFree(r)
	check := func(rc int32) error {
		if rc != 0 {
			return &Error{Op: "request", Status: Status(rc), Msg: f.requestError(r)}
		}
		return nil
	}
	strs := []struct {
		key int32
		v   string
	}{{reqPrompt, req.Prompt}, {reqNegativePrompt, req.NegativePrompt}, {reqSampler, req.Sampler},
		{reqScheduler, req.Scheduler}, {reqRNG, req.RNG}, {reqCompat, req.Compat}}
	for _, s := range strs {
		if err := check(f.requestSetStr(r, s.key, s.v)); err != nil {
			return nil, err
		}
	}
	ints := []struct {
		key int32
		v   int64
	}{{reqWidth, int64(req.Width)}, {reqHeight, int64(req.Height)}, {reqSteps, int64(req.Steps)},
		{reqSeed, req.Seed}, {reqBatch, int64(req.BatchCount)}, {reqClipSkip, int64(req.ClipSkip)}}
	for _, s := range ints {
		if err := check(f.requestSetI64(r, s.key, s.v)); err != nil {
			return nil, err
		}
	}
	if err := check(f.requestSetF64(r, reqCFGScale, req.CFGScale)); err != nil {
		return nil, err
	}
	if err := check(f.requestSetF64(r, reqStrength, req.Strength)); err != nil {
		return nil, err
	}
	if req.InitImage != nil {
		px, w, h := rgbBytes(req.InitImage)
		if err := check(f.requestSetImage(r, reqInitImage, px, int32(w), int32(h), 3)); err != nil {
			return nil, err
		}
	}
	if req.Mask != nil {
		px, w, h := grayBytes(req.Mask)
		if err := check(f.requestSetImage(r, reqMask, px, int32(w), int32(h), 1)); err != nil {
			return nil, err
		}
	}
	if req.Width <= 0 || req.Height <= 0 || req.BatchCount <= 0 {
		return nil, &Error{Op: "generate", Status: StatusInvalidArgument,
			Msg: fmt.Sprintf("size %dx%d and batch count %d must be positive", req.Width, req.Height, req.BatchCount)}
	}
	if int64(req.Width)*int64(req.Height)*int64(req.BatchCount) > 1<<31 {
		return nil, &Error{Op: "generate", Status: StatusInvalidArgument, Msg: "output too large"}
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
	if req.Progress != nil {
		cb = progressTrampoline()
		id = progressNextID.Add(1)
		progressFuncs.Store(id, req.Progress)
		defer progressFuncs.Delete(id)
	}
	n := req.Width * req.Height * 3
	out := make([]byte, n*req.BatchCount)
	var needed uintptr
	rc := f.generate(m.h, r, tok, cb, id, out, uintptr(len(out)), &needed)
	if rc != 0 {
		e := &Error{Op: "generate", Status: Status(rc), Msg: f.modelError(m.h)}
		if Status(rc) == StatusCanceled && ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", e, ctx.Err())
		}
		return nil, e
	}
	res := &Result{Params: req}
	for b := 0; b < req.BatchCount; b++ {
		img := image.NewRGBA(image.Rect(0, 0, req.Width, req.Height))
		src := out[b*n : (b+1)*n]
		for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
			img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = src[i], src[i+1], src[i+2], 255
		}
		res.Images = append(res.Images, img)
		res.Seeds = append(res.Seeds, req.Seed+int64(b))
	}
	return res, nil
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
