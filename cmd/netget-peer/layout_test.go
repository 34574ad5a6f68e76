package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/netget/netget-peer"

// TestLayout keeps the layers of DESIGN.md true: imports point down only,
// only p2p builds hosts, and every package documents what it owns.
func TestLayout(t *testing.T) {
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// Which netget packages each layer may import (tests excluded).
	// The root package (the embeddable node, "netget") sits between cmd
	// and the layers it assembles; nothing but cmd imports it.
	allowed := map[string][]string{
		"netget":                  {"record", "p2p", "dht", "dht/channel", "bootstrap", "bridge"},
		"record":                  {},
		"p2p":                     {},
		"bootstrap":               {},
		"dht":                     {"record", "dht/registry", "dht/store"},
		"dht/registry":            {},
		"dht/store":               {"record"},
		"dht/channel":             {"record", "dht/registry"},
		"bridge":                  {"record"},
		"cmd/netget-peer":         {"netget", "record", "p2p", "dht", "dht/channel", "bootstrap", "bridge", "cmd/netget-peer/control", "cmd/netget-peer/devnet"},
		"cmd/netget-peer/control": {"netget", "record", "dht", "dht/channel", "p2p"},
		"cmd/netget-peer/devnet":  {"netget", "record", "dht", "dht/channel"},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var pkg struct {
			ImportPath, Dir string
			Imports         []string
		}
		if err := dec.Decode(&pkg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := ourPackage(pkg.ImportPath)
		if strings.HasSuffix(rel, "test") && !strings.HasPrefix(rel, "cmd/") {
			continue // p2ptest, dhttest, recordtest: test helpers
		}
		if _, err := os.Stat(filepath.Join(pkg.Dir, "doc.go")); err != nil && rel != "cmd/netget-peer" {
			t.Errorf("%s has no doc.go saying what it owns", rel)
		}
		ok, known := allowed[rel]
		if !known {
			t.Errorf("%s is not in the layout; add it to DESIGN.md and this test", rel)
			continue
		}
		for _, imp := range pkg.Imports {
			if imp == "github.com/libp2p/go-libp2p" && rel != "p2p" {
				t.Errorf("%s imports go-libp2p's constructor package; only p2p builds hosts", rel)
			}
			if dep := ourPackage(imp); dep != "" && !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s: imports must point down (allowed: %v)", rel, dep, ok)
			}
		}
	}
}

// ourPackage names a package of this module as the layout does: its path
// inside the module, "netget" for the root package; "" for another module's.
func ourPackage(importPath string) string {
	if importPath == module {
		return "netget"
	}
	rel, ours := strings.CutPrefix(importPath, module+"/")
	if !ours {
		return ""
	}
	return rel
}
