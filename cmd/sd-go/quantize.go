package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/sd-go-project/sd-go/binding"
	"github.com/sd-go-project/sd-go/quantize"
)

func quantizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "quantize",
		Usage:     "convert a model to a GGUF file with quantized weights",
		ArgsUsage: "TYPE IN OUT",
		Description: "TYPE is one of " + typeNames() + ". IN is a model in any format\n" +
			"sd-go reads (safetensors, ckpt/pt, GGUF, a diffusers folder); OUT is the GGUF file to write.\n" +
			"Which tensors change type follows stable-diffusion.cpp's rules, so OUT loads there too:\n" +
			"biases, embeddings and tensors whose rows are not whole blocks keep their type.\n" +
			"--rules overrides the type per tensor name, e.g. keep the VAE at f16:\n" +
			"  sd-go quantize q4_0 model.safetensors model-q4_0.gguf --rules 'first_stage_model\\.=f16'\n" +
			"OUT is written under a temporary name and renamed when complete.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rules", Usage: "comma-separated `REGEX=TYPE` overrides; the first regex found in a tensor's name wins"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "worker threads (0: one per physical core)"},
		},
		Action: quantizeAction,
	}
}

// typeNames lists the TYPE values, largest first.
func typeNames() string {
	var names []string
	for _, t := range quantize.Types() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// quantizeArgs splits the arguments into TYPE IN OUT and the flags given
// after them (urfave/cli stops parsing flags at the first argument).
func quantizeArgs(c *cli.Context) (pos []string, rules string, threads int, err error) {
	rules, threads = c.String("rules"), c.Int("threads")
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "rules" && name != "threads" && name != "t" {
			return nil, "", 0, usagef("quantize: unknown flag %s", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, "", 0, usagef("quantize: flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		if name == "rules" {
			rules = val
			continue
		}
		n, perr := strconv.Atoi(val)
		if perr != nil {
			return nil, "", 0, usagef("quantize: invalid value %q for %s", val, a)
		}
		threads = n
	}
	return pos, rules, threads, nil
}

func quantizeAction(c *cli.Context) error {
	pos, ruleText, threads, err := quantizeArgs(c)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usagef("quantize needs TYPE IN OUT, got %d argument(s) (see `sd-go quantize --help`)", len(pos))
	}
	typ, err := quantize.ParseType(pos[0])
	if err != nil {
		return usageError{err}
	}
	in, out := pos[1], pos[2]
	rules, err := quantize.ParseRules(ruleText)
	if err != nil {
		return usageError{err}
	}
	if threads < 0 {
		return usagef("quantize: --threads must be >= 0, got %d", threads)
	}
	if _, err := os.Stat(in); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("quantize: input %s does not exist", in)
		}
		return fmt.Errorf("quantize: input: %w", err)
	}
	if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
		return fmt.Errorf("quantize: output folder %s does not exist", filepath.Dir(out))
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return usagef("quantize: output %s is a folder; give a file name", out)
	}

	lib, err := binding.Load(binding.LoadOptions{Path: c.String("lib")})
	if err != nil {
		return err
	}
	stderr := c.App.ErrWriter
	tty := false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
	}
	prog := newQuantizeProgress(stderr, tty)
	fmt.Fprintf(stderr, "sd-go: quantizing %s to %s (%s)\n", in, out, typ)
	sum, err := quantize.File(c.Context, lib, in, out, typ, quantize.Options{
		Rules: rules, Threads: threads, Progress: prog.update,
	})
	prog.finish()
	if err != nil {
		if errors.Is(err, quantize.ErrSameFile) {
			return usageError{err}
		}
		return err
	}
	printQuantizeSummary(c.App.Writer, sum)
	return nil
}

// quantizeProgress shows a bar over the source bytes on a terminal, and a
// plain line per tenth of the work otherwise.
type quantizeProgress struct {
	w        io.Writer
	tty      bool
	bar      *progressbar.ProgressBar
	lastTick int
	start    time.Time
}

func newQuantizeProgress(w io.Writer, tty bool) *quantizeProgress {
	return &quantizeProgress{w: w, tty: tty, lastTick: -1, start: time.Now()}
}

func (q *quantizeProgress) update(p quantize.Progress) {
	if q.tty {
		if q.bar == nil {
			q.bar = progressbar.NewOptions64(int64(p.BytesTotal), progressbar.OptionSetWriter(q.w),
				progressbar.OptionShowBytes(true), progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		if p.Phase == binding.PhaseTensorStart {
			q.bar.Describe(fmt.Sprintf("[%d/%d] %s %s→%s", p.TensorsDone+1, p.TensorCount, shortName(p.Name, 40), p.From.Name(), p.To.Name()))
		}
		_ = q.bar.Set64(int64(p.BytesDone))
		return
	}
	if p.BytesTotal == 0 || p.Phase == binding.PhaseFinishing {
		return
	}
	tick := int(p.BytesDone * 10 / p.BytesTotal)
	if tick == 10 && p.TensorsDone < p.TensorCount {
		return // 100% is said once the last tensor is written
	}
	if tick > q.lastTick && (p.Phase == binding.PhaseTensorDone || p.Phase == binding.PhaseBytes) {
		q.lastTick = tick
		fmt.Fprintf(q.w, "sd-go: quantize %3d%%  %d/%d tensors  %s/%s  %s\n", tick*10, p.TensorsDone, p.TensorCount,
			humanBytes(p.BytesDone), humanBytes(p.BytesTotal), time.Since(q.start).Round(100*time.Millisecond))
	}
}

func (q *quantizeProgress) finish() {
	if q.bar != nil {
		_ = q.bar.Finish()
		_ = q.bar.Clear()
	}
}

func shortName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

func printQuantizeSummary(w io.Writer, s quantize.Summary) {
	fmt.Fprintf(w, "wrote %s\n", s.Output)
	ratio := 0.0
	if s.SourceBytes > 0 {
		ratio = float64(s.OutputBytes) / float64(s.SourceBytes) * 100
	}
	fmt.Fprintf(w, "size: %s -> %s (%.1f%%)\n", humanBytes(s.SourceBytes), humanBytes(s.OutputBytes), ratio)
	fmt.Fprintf(w, "time: %s\n", s.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "tensors: %d written, %d converted", s.Tensors, s.Converted)
	if s.Dropped > 0 {
		fmt.Fprintf(w, ", %d dropped (no GGUF type)", s.Dropped)
	}
	fmt.Fprintln(w)
	keys := make([]quantize.Type, 0, len(s.ByType))
	for t := range s.ByType {
		keys = append(keys, t)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, t := range keys {
		fmt.Fprintf(w, "  %-5s %d\n", t.Name(), s.ByType[t])
	}
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
