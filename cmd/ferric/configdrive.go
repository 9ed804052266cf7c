package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/configdrive"
)

// runConfigdrive handles `ferric configdrive build|write|show`; they work on local files and devices.
func runConfigdrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("configdrive: use build, write or show")
	}
	switch args[0] {
	case "build":
		fs := flag.NewFlagSet("configdrive build", flag.ContinueOnError)
		fs.SetOutput(stderr)
		from := fs.String("from", "", "Ironic's dict form as JSON: {meta_data, user_data, network_data, vendor_data} (required)")
		out := fs.String("o", "", "output file (required)")
		encode := fs.Bool("encode", false, "write Ironic's gzip+base64 string instead of the ISO")
		vfat := fs.Bool("vfat", false, "build the vfat (CONFIG-2) variant instead of ISO 9660")
		uuid := fs.String("uuid", "", "node UUID injected as meta_data.uuid when absent")
		name := fs.String("name", "", "node name injected as meta_data.name when absent")
		if _, err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if *from == "" || *out == "" {
			return errors.New("configdrive build: --from DRIVE.json and -o FILE are required")
		}
		b, err := os.ReadFile(*from)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("--from %s: not a JSON object: %w", *from, err)
		}
		d, err := configdrive.FromMap(m)
		if err != nil {
			return err
		}
		node := configdrive.NodeInfo{UUID: *uuid, Name: *name}
		var img []byte
		if *vfat {
			img, err = configdrive.BuildVFAT(d, node, 0)
		} else {
			img, err = configdrive.Build(d, node)
		}
		if err != nil {
			return err
		}
		data := img
		if *encode {
			s, err := configdrive.Encode(img)
			if err != nil {
				return err
			}
			data = []byte(s)
		}
		if err := os.WriteFile(*out, data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, len(data))
		return nil
	case "write":
		if len(args) != 3 {
			return errors.New("configdrive write: give DEVICE and IMAGE (an ISO/vfat file, or a file holding the gzip+base64 string)")
		}
		b, err := os.ReadFile(args[2])
		if err != nil {
			return err
		}
		if kind, _ := configdrive.Detect(bytesReaderAt(b)); kind == configdrive.KindUnknown {
			if b, err = configdrive.Decode(ctx, string(b), configdrive.DecodeOptions{}); err != nil {
				return fmt.Errorf("%s is neither an image nor Ironic's string form: %w", args[2], err)
			}
		}
		log := logrus.New()
		log.SetOutput(stderr)
		res, err := configdrive.WritePartition(ctx, args[1], b, logrus.NewEntry(log))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "config drive written to %s partition %d (%s, %d MiB at offset %d, reused=%v)\n",
			res.Device, res.Partition, res.Format, res.Size>>20, res.Start, res.Reused)
		return nil
	case "show":
		if len(args) != 2 {
			return errors.New("configdrive show: give an IMAGE or DEVICE")
		}
		files, err := configdrive.ReadFiles(args[1])
		if err != nil {
			return err
		}
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stdout, "%8d  %s\n", len(files[n]), n)
		}
		if md, ok := files["openstack/latest/meta_data.json"]; ok {
			fmt.Fprintf(stdout, "\nmeta_data:\n%s\n", md)
		}
		return nil
	}
	return fmt.Errorf("configdrive %s: use build, write or show", args[0])
}

type byteReaderAt []byte

func (b byteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func bytesReaderAt(b []byte) io.ReaderAt { return byteReaderAt(b) }
