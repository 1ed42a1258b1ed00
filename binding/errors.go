package binding

import (
	"errors"
	"fmt"
	"strings"
)

// Status is a status code returned by the engine's C ABI.
type Status int32

// The engine's status codes (enum sdgo_status in sdgo.h).
const (
	StatusOK              Status = 0
	StatusInvalidArgument Status = -1
	StatusIO              Status = -2
	StatusFormat          Status = -3
	StatusUnsupported     Status = -4
	StatusOutOfMemory     Status = -5
	StatusCanceled        Status = -6
	StatusBufferTooSmall  Status = -7
	StatusInternal        Status = -8
)

// String is the status's short name, as sdgo_status_name gives it.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusInvalidArgument:
		return "invalid argument"
	case StatusIO:
		return "i/o error"
	case StatusFormat:
		return "malformed file"
	case StatusUnsupported:
		return "unsupported"
	case StatusOutOfMemory:
		return "out of memory"
	case StatusCanceled:
		return "canceled"
	case StatusBufferTooSmall:
		return "buffer too small"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status %d", int32(s))
}

// Sentinel errors; an *Error matches the one for its status with errors.Is.
var (
	ErrInvalidArgument = errors.New("sdgo: invalid argument")
	ErrIO              = errors.New("sdgo: i/o error")
	ErrFormat          = errors.New("sdgo: malformed file")
	ErrUnsupported     = errors.New("sdgo: unsupported")
	ErrOutOfMemory     = errors.New("sdgo: out of memory")
	ErrCanceled        = errors.New("sdgo: canceled")
	ErrInternal        = errors.New("sdgo: internal error")
	ErrClosed          = errors.New("sdgo: use of a closed handle")
)

// Error is a failure reported by the engine.
type Error struct {
	Op     string // the operation, e.g. "new engine"
	Status Status // the engine's status code
	Msg    string // the engine's message
}

// Error formats the failure as "sdgo: OP: MESSAGE".
func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = e.Status.String()
	}
	return "sdgo: " + e.Op + ": " + msg
}

// Is reports whether target is the sentinel for e's status.
func (e *Error) Is(target error) bool {
	switch e.Status {
	case StatusInvalidArgument:
		return target == ErrInvalidArgument
	case StatusIO:
		return target == ErrIO
	case StatusFormat:
		return target == ErrFormat
	case StatusUnsupported:
		return target == ErrUnsupported
	case StatusOutOfMemory:
		return target == ErrOutOfMemory
	case StatusCanceled:
		return target == ErrCanceled
	case StatusInternal:
		return target == ErrInternal
	}
	return false
}

// Attempt is one place Load tried, and why it failed.
type Attempt struct {
	Path string
	Err  error
}

// LibraryNotFoundError says that no candidate library could be loaded. It
// lists every place tried, in order.
type LibraryNotFoundError struct {
	Tried []Attempt
}

// Error lists every place tried, one per line.
func (e *LibraryNotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("sdgo: cannot load the engine library (build it with `make`, or set SDGO_LIBRARY to libsdgo's path); tried:")
	for _, a := range e.Tried {
		fmt.Fprintf(&b, "\n  %s: %v", a.Path, a.Err)
	}
	return b.String()
}

// ABIMismatchError says that a library loaded but implements another ABI
// version than this package was written for.
type ABIMismatchError struct {
	Path       string
	Have, Want int32
}

// Error names the file and both ABI versions.
func (e *ABIMismatchError) Error() string {
	return fmt.Sprintf("sdgo: %s implements ABI version %d, this program needs %d (rebuild the library or the program)", e.Path, e.Have, e.Want)
}
