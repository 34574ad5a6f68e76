package main

import (
	"encoding/json"
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs lets flags go anywhere, as users type them:
// `netget-peer find DatabaseService --json --network production` becomes
// `netget-peer --network production find --json DatabaseService`, because
// urfave/cli, like Go's flag package, stops parsing flags at the first
// positional argument and reads global flags only before the command.
// A command's subcommand, named right after it, takes the command's place
// (`registries add ADDR --json`). Everything after "--" is left as it is.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	globals := valueFlags(app.Flags)
	var pre []string
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if !isFlag(a) || a == "--" {
			break
		}
		pre = append(pre, a)
		if name, inline := flagName(a); !inline && globals[name] && i+1 < len(args) {
			i++
			pre = append(pre, args[i])
		}
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	head := []string{args[i]}
	if i+1 < len(args) && len(cmd.Subcommands) > 0 { // `registries add ADDR --json`
		if sub := cmd.Command(args[i+1]); sub != nil {
			cmd, i = sub, i+1
			head = append(head, args[i])
		}
	}
	local := valueFlags(cmd.Flags)
	var glob, flags, pos []string
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			pos = append(pos, args[j:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		name, inline := flagName(a)
		dst, takesValue := &flags, local[name]
		if _, ok := local[name]; !ok {
			if v, ok := globals[name]; ok {
				dst, takesValue = &glob, v
			}
		}
		*dst = append(*dst, a)
		if takesValue && !inline && j+1 < len(args) {
			j++
			*dst = append(*dst, args[j])
		}
	}
	out := append([]string{args[0]}, pre...)
	out = append(out, glob...)
	out = append(out, head...)
	out = append(out, flags...)
	return append(out, pos...)
}

// valueFlags maps every name and alias of flags to whether it takes a value.
func valueFlags(flags []cli.Flag) map[string]bool {
	m := make(map[string]bool)
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// flagName returns the name in "-x", "--name" or "--name=value", and
// whether the value is inline.
func flagName(a string) (string, bool) {
	a = strings.TrimLeft(a, "-")
	name, _, inline := strings.Cut(a, "=")
	return name, inline
}

// metaFlag is --meta's value: every occurrence, each taken whole. A
// cli.StringSliceFlag would split "tags=a,b" at the comma.
type metaFlag struct{ pairs []string }

// metaSerialized prefixes Serialize's form, which urfave/cli sets back
// into the same value when it copies --meta to its alias -m.
const metaSerialized = "\x00meta:"

// Set appends one occurrence, or restores the whole list from Serialize.
func (m *metaFlag) Set(s string) error {
	if rest, ok := strings.CutPrefix(s, metaSerialized); ok {
		return json.Unmarshal([]byte(rest), &m.pairs)
	}
	m.pairs = append(m.pairs, s)
	return nil
}

// Serialize is the whole list, for urfave/cli's alias copy (cli.Serializer).
func (m *metaFlag) Serialize() string {
	b, _ := json.Marshal(m.pairs)
	return metaSerialized + string(b)
}

// String lists the occurrences, for help's default.
func (m *metaFlag) String() string { return strings.Join(m.pairs, " ") }

// metaPairs returns the --meta occurrences, in order.
func metaPairs(c *cli.Context) []string {
	if m, ok := c.Generic("meta").(*metaFlag); ok {
		return m.pairs
	}
	return nil
}
