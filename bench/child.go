package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ChildCommand is the hidden first argument that makes a program built with
// this package run one operation as a child (see ChildMain): the program
// re-executes itself with it, so that the child's peak RSS, which the kernel
// reports when it exits, is the operation's alone.
const ChildCommand = "__chunkbench-op"

// RunChild runs s in a child process, the program exe (normally
// os.Executable) started as "exe ChildCommand SPEC-JSON", and returns the
// outcome with PeakRSS set to the child's peak resident set size: the
// maximum RSS the kernel recorded for the child and the processes it waited
// for (for Cinder, the Python interpreter running Cinder's driver). exe must
// call ChildMain first thing in main (or TestMain).
func RunChild(ctx context.Context, exe string, s Spec) (*Outcome, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, ChildCommand, string(spec))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bench: %s %s in a child process: %w: %s", s.Engine, s.Kind, err, strings.TrimSpace(stderr.String()))
	}
	var out Outcome
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		return nil, fmt.Errorf("bench: %s %s: reading the child's outcome %q: %w", s.Engine, s.Kind, stdout.String(), err)
	}
	out.PeakRSS = maxRSS(cmd.ProcessState)
	return &out, nil
}

// ChildMain runs the operation a parent's RunChild asked for, if the
// program's first argument is ChildCommand: it runs the Spec given as the
// second argument, prints the Outcome as JSON on standard output and exits
// (with status 1 and the error on standard error on failure). Otherwise it
// returns at once. Call it first thing in main, or in TestMain.
func ChildMain() {
	if len(os.Args) < 2 || os.Args[1] != ChildCommand {
		return
	}
	if err := childMain(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func childMain(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: %s %s SPEC-JSON", os.Args[0], ChildCommand)
	}
	var s Spec
	dec := json.NewDecoder(strings.NewReader(args[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("bench: child: bad spec: %w", err)
	}
	start := currentRSS()
	out, err := Run(context.Background(), s)
	if err != nil {
		return err
	}
	if s.Engine != EngineCinder { // Cinder runs in a Python child of its own
		out.StartRSS = start
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
