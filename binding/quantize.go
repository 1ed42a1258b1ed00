package binding

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// quantizeFunctions are the C entry points of sdgo.h's Quantization section.
type quantizeFunctions struct {
	open        func(path string, out *uintptr, err []byte, errLen uintptr) int32
	free        func(src uintptr)
	error       func(src uintptr) string
	tensorCount func(src uintptr) int64
	sourceBytes func(src uintptr) uint64
	tensorInfo  func(src uintptr, i int64, info *cQuantizeTensor, name []byte, nameLen uintptr, needed *uintptr) int32
	write       func(src, ctx uintptr, plan *int32, planLen int64, out string, cancel *int32, cb, user uintptr, result *cQuantizeResult) int32
}

// Mirrors of the C structs (same field order, sizes and alignment).
type cQuantizeTensor struct {
	Type       int32
	StoredType int32
	NDims      int32
	_          int32
	Ne         [4]int64
	NBytes     uint64
}

type cQuantizeProgress struct {
	TensorIndex  int64
	TensorsDone  int64
	TensorCount  int64
	Phase        int32
	OutType      int32
	BytesDone    uint64
	BytesTotal   uint64
	OutBytesDone uint64
}

type cQuantizeResult struct {
	BytesIn        uint64
	BytesOut       uint64
	TensorsWritten int64
	TensorsDropped int64
}

// DropTensor as a plan entry leaves the tensor out of the output file.
const DropTensor int32 = -1

// SourceTensor describes one tensor of a model opened for conversion.
type SourceTensor struct {
	// Name is the canonical name (stable-diffusion.cpp's scheme).
	Name string
	// Type is the ggml type id the tensor keeps when it is not converted:
	// the stored type after stable-diffusion.cpp's normalisation (f64 to
	// f32, i64 to i32, f8 to f16), or DropTensor when GGUF cannot hold it.
	Type int32
	// StoredType is the ggml type id as stored in the file, -1 for types
	// ggml has no id for (f8, u8, bool, ...).
	StoredType int32
	// Ne is the shape in ggml order: Ne[0] is the row length.
	Ne [4]int64
	// NDims is the number of meaningful dimensions (1..4).
	NDims int
	// Bytes is the tensor's size in the source file.
	Bytes uint64
}

// QuantizePhase says what a QuantizeProgress report is about.
type QuantizePhase int32

// Phases of a conversion (enum sdgo_quantize_phase).
const (
	PhaseTensorStart QuantizePhase = 0 // a tensor is about to be converted
	PhaseBytes       QuantizePhase = 1 // a piece of a tensor is done
	PhaseTensorDone  QuantizePhase = 2 // a tensor is written
	PhaseFinishing   QuantizePhase = 3 // flushing and renaming the file
)

// QuantizeProgress is one progress report of QuantizeSource.Write.
type QuantizeProgress struct {
	Phase        QuantizePhase
	TensorIndex  int   // index into Tensors() of the current tensor
	OutType      int32 // its target type
	TensorsDone  int
	TensorCount  int // tensors being written
	BytesDone    uint64
	BytesTotal   uint64 // source bytes of the tensors being written
	OutBytesDone uint64
}

// QuantizeResult reports what QuantizeSource.Write wrote.
type QuantizeResult struct {
	BytesIn        uint64 // source bytes of the tensors written
	BytesOut       uint64 // size of the GGUF file
	TensorsWritten int
	TensorsDropped int
}

// QuantizeSource is a model (any format the engine reads) opened for
// conversion to GGUF. Its methods serialise themselves; Close releases it.
type QuantizeSource struct {
	lib       *Library
	mu        sync.Mutex
	h         uintptr
	tensors   []SourceTensor
	fileBytes uint64
}

// OpenQuantizeSource opens a model file or diffusers folder and lists its
// tensors under their canonical names.
func (l *Library) OpenQuantizeSource(path string) (*QuantizeSource, error) {
	var h uintptr
	errBuf := make([]byte, 1024)
	if rc := l.fn.quantize.open(path, &h, errBuf, uintptr(len(errBuf))); rc != 0 {
		return nil, &Error{Op: "open model", Status: Status(rc), Msg: cString(errBuf)}
	}
	s := &QuantizeSource{lib: l, h: h, fileBytes: l.fn.quantize.sourceBytes(h)}
	n := l.fn.quantize.tensorCount(h)
	s.tensors = make([]SourceTensor, 0, n)
	name := make([]byte, 256)
	for i := int64(0); i < n; i++ {
		var info cQuantizeTensor
		var need uintptr
		rc := l.fn.quantize.tensorInfo(h, i, &info, name, uintptr(len(name)), &need)
		if Status(rc) == StatusBufferTooSmall && need > uintptr(len(name)) {
			name = make([]byte, need)
			rc = l.fn.quantize.tensorInfo(h, i, &info, name, uintptr(len(name)), &need)
		}
		if rc != 0 {
			err := &Error{Op: "list tensors", Status: Status(rc), Msg: l.fn.quantize.error(h)}
			l.fn.quantize.free(h)
			return nil, err
		}
		s.tensors = append(s.tensors, SourceTensor{
			Name: cString(name), Type: info.Type, StoredType: info.StoredType,
			Ne: info.Ne, NDims: int(info.NDims), Bytes: info.NBytes,
		})
	}
	return s, nil
}

// Tensors lists the model's tensors in file order. The slice is shared:
// do not modify it.
func (s *QuantizeSource) Tensors() []SourceTensor { return s.tensors }

// FileBytes is the total size of the files the model was read from.
func (s *QuantizeSource) FileBytes() uint64 { return s.fileBytes }

// Close releases the model. It is idempotent.
func (s *QuantizeSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != 0 {
		s.lib.fn.quantize.free(s.h)
		s.h = 0
	}
	return nil
}

// The one C progress callback (purego callbacks are never freed, so there
// is one per process), dispatching on the user-data id.
var (
	quantizeCBOnce sync.Once
	quantizeCB     uintptr
	quantizeCBMu   sync.Mutex
	quantizeCBSeq  uintptr
	quantizeCBFns  = map[uintptr]*quantizeSink{}
)

type quantizeSink struct {
	ctx      context.Context
	fn       func(QuantizeProgress)
	panicked any
}

func quantizeProgressCallback() uintptr {
	quantizeCBOnce.Do(func() {
		quantizeCB = purego.NewCallback(func(p *cQuantizeProgress, user uintptr) int32 {
			quantizeCBMu.Lock()
			sink := quantizeCBFns[user]
			quantizeCBMu.Unlock()
			if sink == nil || p == nil {
				return 0
			}
			return sink.call(QuantizeProgress{
				Phase: QuantizePhase(p.Phase), TensorIndex: int(p.TensorIndex), OutType: p.OutType,
				TensorsDone: int(p.TensorsDone), TensorCount: int(p.TensorCount),
				BytesDone: p.BytesDone, BytesTotal: p.BytesTotal, OutBytesDone: p.OutBytesDone,
			})
		})
	})
	return quantizeCB
}

// call runs the Go callback; a panic cancels the conversion and is
// re-raised by Write once the engine has returned.
func (s *quantizeSink) call(p QuantizeProgress) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked = r
			rc = 1
		}
	}()
	s.fn(p)
	if s.ctx.Err() != nil { // cancelled from the callback: stop now
		return 1
	}
	return 0
}

// Write converts the model to a GGUF file at outPath on eng's threads.
// plan[i] is the ggml type id for Tensors()[i], or DropTensor. A tensor
// whose plan type equals its Type is copied unchanged; the others go
// through f32 and ggml's quantizers with an all-ones importance vector,
// byte-identical to stable-diffusion.cpp's converter. The file is written
// beside outPath under a temporary name and renamed when complete: on any
// error or cancellation outPath is left as it was.
//
// Cancelling ctx stops the conversion within a few megabytes of work; the
// error then matches both ctx.Err() and ErrCanceled. progress (may be nil)
// is called on the calling goroutine, per tensor and per piece of a tensor.
func (s *QuantizeSource) Write(ctx context.Context, eng *Engine, plan []int32, outPath string, progress func(QuantizeProgress)) (QuantizeResult, error) {
	var res QuantizeResult
	if eng == nil {
		return res, &Error{Op: "quantize", Status: StatusInvalidArgument, Msg: "no engine"}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == 0 {
		return res, ErrClosed
	}
	if len(plan) != len(s.tensors) {
		return res, &Error{Op: "quantize", Status: StatusInvalidArgument,
			Msg: fmt.Sprintf("the plan has %d entries for %d tensors", len(plan), len(s.tensors))}
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if eng.h == 0 {
		return res, ErrClosed
	}

	cancel := new(int32)
	stop := context.AfterFunc(ctx, func() { atomic.StoreInt32(cancel, 1) })
	defer stop()

	var cb, user uintptr
	var sink *quantizeSink
	if progress != nil {
		cb = quantizeProgressCallback()
		sink = &quantizeSink{ctx: ctx, fn: progress}
		quantizeCBMu.Lock()
		quantizeCBSeq++
		user = quantizeCBSeq
		quantizeCBFns[user] = sink
		quantizeCBMu.Unlock()
		defer func() {
			quantizeCBMu.Lock()
			delete(quantizeCBFns, user)
			quantizeCBMu.Unlock()
		}()
	}
	var planPtr *int32
	if len(plan) > 0 {
		planPtr = &plan[0]
	}
	var cres cQuantizeResult
	rc := s.lib.fn.quantize.write(s.h, eng.h, planPtr, int64(len(plan)), outPath, cancel, cb, user, &cres)
	runtime.KeepAlive(plan)
	runtime.KeepAlive(cancel)
	if sink != nil && sink.panicked != nil {
		panic(sink.panicked)
	}
	if rc != 0 {
		err := &Error{Op: "quantize", Status: Status(rc), Msg: s.lib.fn.quantize.error(s.h)}
		if Status(rc) == StatusCanceled && ctx.Err() != nil {
			return res, errors.Join(ctx.Err(), err)
		}
		return res, err
	}
	res = QuantizeResult{
		BytesIn: cres.BytesIn, BytesOut: cres.BytesOut,
		TensorsWritten: int(cres.TensorsWritten), TensorsDropped: int(cres.TensorsDropped),
	}
	return res, nil
}

// sizeof checks, kept next to the mirrors: a mismatch is a build failure.
var (
	_ [56 - unsafe.Sizeof(cQuantizeTensor{})]struct{}
	_ [unsafe.Sizeof(cQuantizeTensor{}) - 56]struct{}
	_ [56 - unsafe.Sizeof(cQuantizeProgress{})]struct{}
	_ [unsafe.Sizeof(cQuantizeProgress{}) - 56]struct{}
	_ [32 - unsafe.Sizeof(cQuantizeResult{})]struct{}
	_ [unsafe.Sizeof(cQuantizeResult{}) - 32]struct{}
)
