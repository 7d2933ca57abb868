package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/policyd/policyd/clients/go/internal/daemontest"
)

func TestExamplePrintsAnswerAttemptsAndRule(t *testing.T) {
	d, err := daemontest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	for _, args := range [][]string{
		{"-addr", d.Addr, "-task", "coding", "Write a binary search in Go"},
		{"-addr", d.Addr, "-stream", "-stakes", "high", "Summarise RFC 9110"},
	} {
		var out bytes.Buffer
		if err := run(args, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		text := out.String()
		for _, want := range []string{"simulated answer", "attempt 0", "total $", "rule "} {
			if !strings.Contains(text, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, text)
			}
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-addr", d.Addr, "-explain", "-task", "coding", "x"}, &out); err != nil || !strings.Contains(out.String(), "estimated $") {
		t.Fatalf("explain: err=%v output=%q", err, out.String())
	}
	if err := run([]string{"-addr", d.Addr, "-stakes", "extreme", "x"}, &out); err == nil || !strings.Contains(err.Error(), "-stakes") {
		t.Fatalf("bad -stakes: err=%v, want it named", err)
	}
}
