// Command sd-go runs Stable Diffusion models on the sd-go engine.
//
// Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is the CLI's version; release builds set it with -ldflags "-X main.version=…".
var version = "0.1.0"

const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run executes the CLI and returns its exit code; main and the tests share it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	return report(ctx, err, stderr)
}

// report prints err (if any) and maps it to an exit code.
func report(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		fmt.Fprintln(stderr, "sd-go: interrupted")
		return exitInterrupted
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "sdgo: ") {
		msg = "sd-go: " + msg
	}
	fmt.Fprintln(stderr, msg)
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailure
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "sd-go",
		Usage:     "run Stable Diffusion models on a fast native engine",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:      "lib",
				Usage:     "path of the engine library (`PATH` to libsdgo, or its folder); default: $SDGO_LIBRARY, beside the executable, ../lib, the build folder",
				TakesFile: true,
			},
		},
		Commands: []*cli.Command{
			versionCommand(),
			runCommand(),
			quantizeCommand(),
			infoCommand(),
		},
		HideVersion: true, // `sd-go version` says more than --version would
		// Keep urfave/cli from calling os.Exit inside Run; report() decides.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
	app.CommandNotFound = func(c *cli.Context, name string) {
		// urfave/cli returns nil after this hook; remember the mistake so
		// that Run's caller still sees a usage error.
		c.App.Metadata["usage-error"] = usagef("unknown command %q (see `sd-go help`)", name)
	}
	app.Metadata = map[string]any{}
	app.After = func(c *cli.Context) error {
		if err, ok := c.App.Metadata["usage-error"].(error); ok {
			return err
		}
		return nil
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	return app
}

// checkNoArgs rejects stray arguments, which urfave/cli would ignore.
func checkNoArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("%s takes no arguments, got %q", c.Command.Name, c.Args().First())
	}
	return nil
}
