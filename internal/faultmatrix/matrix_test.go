//go:build faultmatrix

package faultmatrix

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chunkback/chunkback/internal/servertest"
)

// TableEnv names the file the outcome table is written to (markdown).
const TableEnv = "CHUNKBACK_FAULT_TABLE"

// TestFaultMatrix runs every fault (row) against every target kind of
// every real server (column). Subtests are server/kind/fault, so -run
// picks any part, e.g. -run 'TestFaultMatrix/minio/s3/latency'.
func TestFaultMatrix(t *testing.T) {
	tab := &table{cells: map[[2]string]string{}}
	for _, r := range rows() {
		tab.rows = append(tab.rows, r.title)
	}
	t.Cleanup(func() {
		md := tab.markdown()
		t.Log("\n" + md)
		if path := os.Getenv(TableEnv); path != "" {
			if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
				t.Errorf("writing the table to %s (%s): %v", path, TableEnv, err)
			}
		}
	})
	for _, server := range servertest.Servers() {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			urls := env.URLs()
			if len(urls) == 0 {
				t.Fatalf("the env file of %s names no URL_ target", server)
			}
			for _, kind := range slices.Sorted(maps.Keys(urls)) {
				col := column{Server: server, Kind: kind, URL: urls[kind], Env: env.CLIEnv()}
				tab.addColumn(col.String())
				t.Run(kind, func(t *testing.T) {
					for _, r := range rows() {
						t.Run(r.name, func(t *testing.T) {
							cell := "**failed** (see the test log)"
							defer func() { tab.set(r.title, col.String(), cell) }()
							cell = r.run(newHarness(t, col))
						})
					}
				})
			}
		})
	}
}

// table is the outcome table: a cell per fault and column.
type table struct {
	mu    sync.Mutex
	rows  []string
	cols  []string
	cells map[[2]string]string
}

func (t *table) addColumn(c string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.Contains(t.cols, c) {
		t.cols = append(t.cols, c)
	}
}

func (t *table) set(row, col, cell string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cells[[2]string{row, col}] = cell
}

// markdown renders the table; cells of cases that did not run (-run)
// say so.
func (t *table) markdown() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "| fault | %s |\n", strings.Join(t.cols, " | "))
	fmt.Fprintf(&b, "|---|%s\n", strings.Repeat("---|", len(t.cols)))
	for _, r := range t.rows {
		fmt.Fprintf(&b, "| %s |", r)
		for _, c := range t.cols {
			cell, ok := t.cells[[2]string{r, c}]
			if !ok {
				cell = "not run"
			}
			fmt.Fprintf(&b, " %s |", strings.ReplaceAll(cell, "|", "/"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
