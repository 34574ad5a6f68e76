package bridge_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netget/netget-peer/bridge"
)

// TestTypeScript: `npm pack` in this folder makes an installable package
// holding the script, the module and their declarations (and no Go), and
// a strict TypeScript user of it (testdata/ts/user.ts: find, findStream,
// connect, channels, watch) type-checks against the installed package,
// its misuses failing where they should (@ts-expect-error). tsc comes from
// scripts/typescript.sh (NETGET_TSC overrides).
func TestTypeScript(t *testing.T) {
	tsc := findTSC(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is required (Debian: apt-get install -y nodejs npm): %v", err)
	}
	tmp := t.TempDir()
	out := run(t, ".", npm, "pack", "--json", "--pack-destination", tmp)
	var packed []struct {
		Filename string
		Files    []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(out), &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json: %v\n%s", err, out)
	}
	var files []string
	for _, f := range packed[0].Files {
		files = append(files, f.Path)
	}
	for _, want := range []string{"netget-handshaker.js", "netget-handshaker.mjs", "netget-handshaker.d.ts", "package.json"} {
		if !slices.Contains(files, want) {
			t.Errorf("package lacks %s (has %v)", want, files)
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".go") || strings.HasPrefix(f, "testdata/") {
			t.Errorf("package holds %s", f)
		}
	}

	app := filepath.Join(tmp, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(app, "package.json"), `{"name":"ts-user","private":true,"type":"module"}`)
	run(t, app, npm, "install", "--offline", "--no-audit", "--no-fund", "--silent", filepath.Join(tmp, packed[0].Filename))
	for _, name := range []string{"user.ts", "tsconfig.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "ts", name))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(app, name), string(b))
	}
	run(t, app, tsc, "-p", "tsconfig.json")
}

// findTSC returns the tsc scripts/typescript.sh installed, or fails
// saying how to get it.
func findTSC(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NETGET_TSC"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "netget-peer", "typescript", "node_modules", ".bin", "tsc")
	if dir := os.Getenv("NETGET_TS_DIR"); dir != "" {
		p = filepath.Join(dir, "node_modules", ".bin", "tsc")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the TypeScript compiler is required and %s is missing: run scripts/typescript.sh (it installs typescript from npm once)", p)
	}
	return p
}

// run runs a command in dir and returns its stdout; a failure fails t
// with its output.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeclarationsCodes keeps the declarations' ErrorCode list holding
// every error code of Go's.
func TestDeclarationsCodes(t *testing.T) {
	dts, err := os.ReadFile("netget-handshaker.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range bridge.Codes() {
		if !strings.Contains(string(dts), `"`+string(c)+`"`) {
			t.Errorf("netget-handshaker.d.ts: ErrorCode lacks %q", c)
		}
	}
}
