package main

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// configFile is the parsed --config file: flag names to values. Keys match
// the flags (without dashes): `network = "production"`,
// `bootstrap = ["/dns4/…"]`, `health-interval = "30s"`. Global flags and
// the running command's flags may both appear at the top level.
type configFile map[string]any

// loadConfig reads the TOML file at path. It is strict: a key that is no
// flag of the program is an error naming the file and the key.
func loadConfig(path string, known map[string]bool) (configFile, error) {
	var cfg configFile
	md, err := toml.DecodeFile(path, &cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError("--config %s: no such file", path)
	}
	if err != nil {
		return nil, usageError("--config %s: %w", path, err)
	}
	for _, k := range md.Keys() {
		if len(k) > 1 {
			return nil, usageError("--config %s: %q: tables are not used; put every key at the top level", path, k.String())
		}
		if !known[k[0]] || k[0] == "config" {
			return nil, usageError("--config %s: unknown key %q (keys are flag names, see --help)", path, k[0])
		}
	}
	return cfg, nil
}

// apply sets every flag of flags that the file names and that neither the
// command line nor the environment set: flags and environment win.
func (cfg configFile) apply(c *cli.Context, flags []cli.Flag, path string) error {
	for _, f := range flags {
		name := f.Names()[0]
		v, ok := cfg[name]
		if !ok || c.IsSet(name) {
			continue
		}
		vals, err := flagValues(v)
		if err != nil {
			return usageError("--config %s: %s: %w", path, name, err)
		}
		for _, s := range vals {
			if err := c.Set(name, s); err != nil {
				return usageError("--config %s: %s = %q: %w", path, name, s, err)
			}
		}
	}
	return nil
}

// flagValues turns a TOML value into the strings a flag parses.
func flagValues(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case bool, int64, float64:
		return []string{fmt.Sprint(v)}, nil
	case time.Duration:
		return []string{v.String()}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, got %T in it", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// flagNames returns every flag name of the app and its commands.
func flagNames(app *cli.App) map[string]bool {
	names := make(map[string]bool)
	add := func(flags []cli.Flag) {
		for _, f := range flags {
			names[f.Names()[0]] = true
		}
	}
	add(app.Flags)
	for _, c := range app.Commands {
		add(c.Flags)
	}
	return names
}

// withConfig makes the app and every command read --config before they
// run. The file is read once, by the app's Before.
func withConfig(app *cli.App) {
	var cfg configFile
	var path string
	before := app.Before
	app.Before = func(c *cli.Context) error {
		if path = c.String("config"); path != "" {
			var err error
			if cfg, err = loadConfig(path, flagNames(app)); err != nil {
				return err
			}
			if err := cfg.apply(c, app.Flags, path); err != nil {
				return err
			}
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	for _, cmd := range app.Commands {
		cmdBefore := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if cfg != nil {
				if err := cfg.apply(c, c.Command.Flags, path); err != nil {
					return err
				}
			}
			if cmdBefore != nil {
				return cmdBefore(c)
			}
			return nil
		}
	}
}
