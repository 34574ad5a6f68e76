package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of netget-peer and of its libp2p dependencies",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, versionString())
			return nil
		},
	}
}

// versionString reads the build info the Go toolchain embeds.
func versionString() string {
	v, deps := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/libp2p/go-libp2p", "github.com/libp2p/go-libp2p-kad-dht":
				deps += fmt.Sprintf(", %s %s", d.Path[len("github.com/libp2p/"):], d.Version)
			}
		}
	}
	return fmt.Sprintf("netget-peer %s (%s%s)", v, runtime.Version(), deps)
}
