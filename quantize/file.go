package quantize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sd-go-project/sd-go/binding"
)

// Options tune File. The zero value converts with the default policy on
// one thread per physical core, silently.
type Options struct {
	// Rules override the target type for matching tensor names (see
	// ParseRules); the first match wins.
	Rules []Rule
	// Threads is the number of worker threads; 0 means one per physical
	// core. The bytes written do not depend on it.
	Threads int
	// Progress, when set, is called on File's goroutine per tensor and per
	// piece of a large tensor.
	Progress func(Progress)
}

// Progress is one progress report of File.
type Progress struct {
	binding.QuantizeProgress
	Name     string // the current tensor's canonical name
	From, To Type   // its source (normalised) and output types
}

// Summary describes a finished conversion.
type Summary struct {
	Source, Output string
	SourceBytes    uint64 // size of the source file(s)
	OutputBytes    uint64 // size of the GGUF written
	Duration       time.Duration
	Tensors        int          // tensors written
	Converted      int          // tensors whose type changed
	Dropped        int          // tensors GGUF cannot hold, left out
	ByType         map[Type]int // tensors written, by output type
}

// ErrSameFile is returned when the output would replace the source.
var ErrSameFile = errors.New("quantize: the output is the input file")

// Plan applies the policy to a model's tensors: the type id per tensor for
// QuantizeSource.Write, and the decisions.
func Plan(p Policy, tensors []binding.SourceTensor) (plan []int32, out []Type, reasons []Reason) {
	plan = make([]int32, len(tensors))
	out = make([]Type, len(tensors))
	reasons = make([]Reason, len(tensors))
	for i, st := range tensors {
		t, why := p.Choose(Tensor{Name: st.Name, Type: Type(st.Type), Ne: st.Ne})
		plan[i], out[i], reasons[i] = int32(t), t, why
	}
	return plan, out, reasons
}

// File converts the model at src (any format the engine reads: a
// safetensors, ckpt/pt or GGUF file, or a diffusers folder) into the GGUF
// file dst, with target as the type for the tensors stable-diffusion.cpp's
// rules convert (see Policy.Choose). Tensor names in dst are canonical.
//
// dst is written under a temporary name in its folder and renamed when
// complete; on error or cancellation (ctx) no file is left behind and an
// existing dst is untouched. The error of a cancelled call matches
// ctx.Err().
func File(ctx context.Context, lib *binding.Library, src, dst string, target Type, opts Options) (Summary, error) {
	start := time.Now()
	sum := Summary{Source: src, Output: dst, ByType: map[Type]int{}}
	pol := Policy{Target: target, Rules: opts.Rules}
	if err := pol.Validate(); err != nil {
		return sum, err
	}
	if opts.Threads < 0 {
		return sum, fmt.Errorf("quantize: thread count must be >= 0, got %d", opts.Threads)
	}
	if same, err := sameFile(src, dst); err == nil && same {
		return sum, fmt.Errorf("%w: %s", ErrSameFile, dst)
	}
	source, err := lib.OpenQuantizeSource(src)
	if err != nil {
		return sum, err
	}
	defer source.Close()
	eng, err := lib.NewEngine(binding.EngineOptions{Threads: opts.Threads})
	if err != nil {
		return sum, err
	}
	defer eng.Close()

	tensors := source.Tensors()
	plan, outTypes, _ := Plan(pol, tensors)
	var progress func(binding.QuantizeProgress)
	if opts.Progress != nil {
		progress = func(p binding.QuantizeProgress) {
			pr := Progress{QuantizeProgress: p}
			if p.TensorIndex >= 0 && p.TensorIndex < len(tensors) {
				pr.Name = tensors[p.TensorIndex].Name
				pr.From = Type(tensors[p.TensorIndex].Type)
				pr.To = outTypes[p.TensorIndex]
			}
			opts.Progress(pr)
		}
	}
	res, err := source.Write(ctx, eng, plan, dst, progress)
	if err != nil {
		return sum, err
	}
	sum.SourceBytes = source.FileBytes()
	sum.OutputBytes = res.BytesOut
	sum.Tensors = res.TensorsWritten
	sum.Dropped = res.TensorsDropped
	for i, t := range outTypes {
		if t == Drop {
			continue
		}
		sum.ByType[t]++
		if int32(t) != tensors[i].Type {
			sum.Converted++
		}
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// sameFile reports whether dst names the file src (a folder source never is).
func sameFile(src, dst string) (bool, error) {
	a, err := os.Stat(src)
	if err != nil {
		return false, err
	}
	b, err := os.Stat(dst)
	if err != nil {
		return false, err
	}
	if os.SameFile(a, b) {
		return true, nil
	}
	as, _ := filepath.Abs(src)
	bs, _ := filepath.Abs(dst)
	return as == bs, nil
}
