package binding

import (
	"context"
	"log/slog"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The engine's log levels (enum sdgo_log_level).
const (
	logDebug int32 = 0
	logInfo  int32 = 1
	logWarn  int32 = 2
	logError int32 = 3
)

var (
	logMu       sync.Mutex
	logger      *slog.Logger
	logCallback uintptr
	logOnce     sync.Once
)

// SetLogger routes the engine's log messages to lg at lg's enabled levels;
// nil silences them. The setting is process-wide. The C callback behind it
// is created once per process (purego callbacks are never freed).
func (l *Library) SetLogger(lg *slog.Logger) {
	logOnce.Do(func() {
		logCallback = purego.NewCallback(func(level int32, msg *byte, _ uintptr) {
			logMu.Lock()
			lg := logger
			logMu.Unlock()
			if lg == nil || msg == nil {
				return
			}
			lg.Log(context.Background(), slogLevel(level), goString(msg), "source", "engine")
		})
	})
	logMu.Lock()
	logger = lg
	logMu.Unlock()
	if lg == nil {
		l.fn.logSet(0, 0, logError)
		return
	}
	min := logError
	for _, lv := range []int32{logDebug, logInfo, logWarn} {
		if lg.Enabled(context.Background(), slogLevel(lv)) {
			min = lv
			break
		}
	}
	l.fn.logSet(logCallback, 0, min)
}

func slogLevel(level int32) slog.Level {
	switch level {
	case logDebug:
		return slog.LevelDebug
	case logInfo:
		return slog.LevelInfo
	case logWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// goString copies a NUL-terminated C string owned by C.
func goString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
