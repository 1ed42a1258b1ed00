package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sd-go-project/sd-go/binding"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the versions, the CPU features detected, the code path chosen, and the backends and devices",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		},
		Action: func(c *cli.Context) error {
			if err := checkNoArgs(c); err != nil {
				return err
			}
			out := c.App.Writer
			if !c.Bool("json") {
				fmt.Fprintf(out, "sd-go %s\n", version)
			}
			lib, err := binding.Load(binding.LoadOptions{Path: c.String("lib")})
			if err != nil {
				return err
			}
			eng, err := lib.NewEngine(binding.EngineOptions{})
			if err != nil {
				return err
			}
			defer eng.Close()
			info, err := eng.SystemInfo()
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Version string `json:"version"`
					Library string `json:"library"`
					binding.SystemInfo
				}{version, lib.Path(), info})
			}
			fmt.Fprintf(out, "engine %s (ABI %d) from %s\n", info.EngineVersion, info.ABIVersion, lib.Path())
			fmt.Fprintf(out, "cpu: %s %s, %d physical / %d logical cores\n", info.Arch, info.CPUModel, info.PhysicalCores, info.LogicalCores)
			fmt.Fprintf(out, "cpu features: %s\n", strings.Join(info.CPUFeatures, " "))
			fmt.Fprintf(out, "code path: %s (runnable: %s), %d threads\n", info.CodePath, strings.Join(info.CodePaths, " "), info.Threads)
			for _, b := range info.Backends {
				if len(b.Devices) == 0 {
					fmt.Fprintf(out, "backend %s: no devices (%s)\n", b.Name, b.Note)
					continue
				}
				fmt.Fprintf(out, "backend %s:\n", b.Name)
				for _, d := range b.Devices {
					fmt.Fprintf(out, "  device %d: %s (%s, %s", d.Index, d.Name, d.Type, d.Description)
					if d.MemoryBytes > 0 {
						fmt.Fprintf(out, ", %.1f GiB", float64(d.MemoryBytes)/(1<<30))
					}
					fmt.Fprintln(out, ")")
				}
			}
			return nil
		},
	}
}
