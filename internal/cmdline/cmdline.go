// Package cmdline parses a program's or subcommand's flags the same way
// everywhere: -h/--help prints usage to stdout and exits 0 before anything
// starts; an unknown flag or a stray argument prints the error and usage to
// stderr and exits 2.
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Exit statuses shared by every program.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Command describes one program or subcommand for its usage text.
type Command struct {
	// Usage is the synopsis and what the command does, ending in a newline:
	// "usage: ikd-alerter\n\nRaises alerts ...\n".
	Usage string
	// Flags are the command's flags; nil for a command without any.
	Flags *flag.FlagSet
	// MaxArgs is how many positional arguments are allowed.
	MaxArgs int
}

// Parse parses args into c.Flags. It returns done=true when the caller must
// exit with code: after printing usage for -h/--help (0), or after an error
// in the arguments (2).
func (c Command) Parse(args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs := c.Flags
	if fs == nil {
		fs = flag.NewFlagSet("", flag.ContinueOnError)
	}
	// Parse's own messages are discarded: usage goes where it belongs below.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.Print(stdout)
		return ExitOK, true
	case err != nil:
		fmt.Fprintf(stderr, "%v\n\n", err)
		c.Print(stderr)
		return ExitUsage, true
	case fs.NArg() > c.MaxArgs:
		fmt.Fprintf(stderr, "unexpected argument %q\n\n", fs.Arg(c.MaxArgs))
		c.Print(stderr)
		return ExitUsage, true
	}
	return ExitOK, false
}

// Print writes the usage text and the flags with their defaults.
func (c Command) Print(w io.Writer) {
	fmt.Fprint(w, c.Usage)
	if c.Flags == nil {
		return
	}
	n := 0
	c.Flags.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	c.Flags.SetOutput(w)
	c.Flags.PrintDefaults()
	c.Flags.SetOutput(io.Discard)
}

// IsHelp tells whether arg asks for help as a subcommand name would.
func IsHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

// Stopped logs how a long-running program's run ended and returns its exit
// status. An error while ctx was live is a failure; one after ctx was
// cancelled (SIGINT or SIGTERM while the program was starting) was cut short
// by the signal and is not.
func Stopped(ctx context.Context, logger *slog.Logger, program string, err error) int {
	switch {
	case err != nil && ctx.Err() == nil:
		logger.Error(program+" stopped", "err", err)
		return ExitFailed
	case err != nil:
		logger.Info(program+" stopped before it was fully started", "interrupted", err)
	}
	return ExitOK
}
