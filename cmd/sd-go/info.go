package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sd-go-project/sd-go/binding"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "describe model files (family, variant, components, parameters, tensor types, metadata), or print the generation parameters stored in an image",
		ArgsUsage: "MODEL... | IMAGE",
		Description: "MODEL is a .safetensors, .gguf, .ckpt/.pt/.pth/.bin file, a sharded\n" +
			"*.safetensors.index.json or a diffusers folder. Several MODELs are described as one\n" +
			"model (e.g. a checkpoint plus a separate VAE). Nothing is executed: pickled\n" +
			"checkpoints that reference anything but tensors are refused.\n\n" +
			"IMAGE is a PNG or JPEG written by `sd-go run` (or A1111): its A1111 \"parameters\"\n" +
			"text is printed as A1111's PNG Info shows it.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: infoAction,
	}
}

func infoAction(c *cli.Context) error {
	var paths []string
	asJSON := c.Bool("json")
	for _, a := range c.Args().Slice() { // flags may follow the arguments
		switch a {
		case "--json", "-json":
			asJSON = true
		default:
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				return usagef("info: unknown flag %s", a)
			}
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		return usagef("info needs at least one MODEL (see `sd-go info --help`)")
	}
	if len(paths) == 1 {
		if handled, err := imageInfo(c.App.Writer, paths[0], asJSON); handled {
			return err
		}
	}
	lib, err := binding.Load(binding.LoadOptions{Path: c.String("lib")})
	if err != nil {
		return err
	}
	info, err := lib.FilesInfo(paths...)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, info.JSON, "", "  "); err != nil {
			return fmt.Errorf("info: %w", err)
		}
		out.WriteByte('\n')
		_, err := w.Write(out.Bytes())
		return err
	}
	printInfo(w, info)
	return nil
}

// imageInfo prints the A1111 parameters of a PNG or JPEG file. It reports
// handled = false when path is not an image, so that the caller treats it
// as a model file.
func imageInfo(w io.Writer, path string, asJSON bool) (handled bool, err error) {
	f, err := openRegular(path)
	if err != nil {
		return false, nil // a folder, or nothing: let the model reader report it
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")) && !bytes.HasPrefix(head, []byte{0xFF, 0xD8}) {
		return false, nil
	}
	// Image files are read whole: bound them (a 16384x16384 PNG is far
	// smaller than this).
	const maxImageFile = 256 << 20
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return true, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return true, err
	}
	if len(b) > maxImageFile {
		return true, fmt.Errorf("info: %s is larger than %d MiB", path, maxImageFile>>20)
	}
	params, err := readParameters(b)
	if err != nil {
		return true, fmt.Errorf("info: %s: %w", path, err)
	}
	if params == "" {
		return true, fmt.Errorf("info: %s has no generation parameters", path)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(map[string]string{"image": path, "parameters": params})
	}
	_, err = fmt.Fprintln(w, params)
	return true, err
}

func printInfo(w io.Writer, in *binding.FilesInfo) {
	fmt.Fprintf(w, "model:       %s\n", strings.Join(in.Paths, ", "))
	fmt.Fprintf(w, "format:      %s, %s\n", in.Source, humanBytes(in.FileBytes))
	fmt.Fprintf(w, "family:      %s (%s), prediction %s\n", in.Family, in.Variant, in.Prediction)
	var comps []string
	var total uint64
	for _, name := range in.Components {
		p := in.Parameters[name]
		total += p.Params
		comps = append(comps, fmt.Sprintf("%s %s", name, humanCount(p.Params)))
	}
	if o, ok := in.Parameters["other"]; ok && o.Tensors > 0 {
		total += o.Params
		comps = append(comps, fmt.Sprintf("other %s (%d tensors)", humanCount(o.Params), o.Tensors))
	}
	fmt.Fprintf(w, "components:  %s\n", strings.Join(comps, ", "))
	fmt.Fprintf(w, "parameters:  %s in %d tensors\n", humanCount(total), in.TensorCount)
	types := make([]string, 0, len(in.Types))
	for t := range in.Types {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return in.Types[types[i]].Bytes > in.Types[types[j]].Bytes })
	for i, t := range types {
		label := "types:"
		if i > 0 {
			label = ""
		}
		s := in.Types[t]
		fmt.Fprintf(w, "%-12s %-8s %5d tensors  %s\n", label, t, s.Tensors, humanBytes(s.Bytes))
	}
	section := func(name string, m map[string]json.RawMessage) {
		if len(m) == 0 {
			return
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+string(m[k]))
		}
		fmt.Fprintf(w, "%-12s %s\n", name+":", strings.Join(parts, " "))
	}
	section("unet", in.UNet)
	section("vae", in.VAE)
	section("text_encoder", in.TextEncoder)
	section("text_encoder_2", in.TextEncoder2)
	if len(in.Metadata) > 0 {
		keys := make([]string, 0, len(in.Metadata))
		for k := range in.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "metadata:    %d keys\n", len(keys))
		for _, k := range keys {
			v := strings.ReplaceAll(in.Metadata[k], "\n", " ")
			if len(v) > 100 {
				v = v[:100] + "…"
			}
			fmt.Fprintf(w, "  %s = %s\n", k, v)
		}
	}
}

// humanCount prints a parameter count as 1.23M / 860.0K / 512.
func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprintf("%d", n)
}
