// Command ferric is the operator's CLI for a Ferric (or any Ironic) bare-metal API: nodes, ports, drivers,
// deploys with progress, and config drives.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
)

const usage = `usage: ferric [--url URL] [-o table|json] COMMAND ...

Commands:
  node create --driver D [--name N] [--driver-info k=v]... [--property k=v]... [--<kind>-interface X]...
  node list [--provision-state S] [--detail]
  node show NODE
  node set NODE [--name N] [--driver-info k=v]... [--property k=v]... [--instance-info k=v]... [--extra k=v]...
                [--<kind>-interface X]... [--maintenance true|false]
  node unset NODE [--driver-info k]... [--property k]... [--instance-info k]... [--extra k]...
  node delete NODE...
  node manage|provide|undeploy NODE [--wait] [--timeout D]
  node deploy NODE [--image oci://...] [--authorized-keys FILE] [--configdrive FILE] [--pull-secret S]
              [--tpm2-luks] [--wait] [--timeout D]
  node logs NODE [--run ID]
  node power NODE on|off|reboot|soft-off|soft-reboot
  node wait NODE STATE [--timeout D]
  port create --node NODE --address MAC
  port list [--node NODE]
  port delete PORT...
  driver list
  fleetlock list                                  reboot groups (FleetLock): slots and holders
  fleetlock set GROUP [--slots N|default] [--secret-file FILE|-]
  fleetlock release GROUP ID                      free a reboot slot a node will not give back
  bootc images [--digest D] [--limit N] [--refresh]   booted images of image-mode hosts, with the stale flag
  bootc show NODE                                     a host's last bootc report and its reporter credential's state
  bootc upgrade|rollback NODE [--no-reboot] [--reboot-group G]   queue bootc upgrade or rollback on the host
  bootc switch NODE IMAGE [--no-reboot] [--reboot-group G]       queue bootc switch (IMAGE pinned to its digest)
  bootc actions NODE                                  the host's actions, newest first
  bootc cancel NODE ACTION                            cancel an action the host has not started
  bootc rollout create IMAGE --size N|--percent P [--node N]... [--resource-class RC] [--trait T]... [--owner O]
              [--conductor-group G] [--wait-between D] [--health-deadline D] [--max-unavailable N]
              [--window "Mon-Fri 02:00-05:00"]... [--barrier IMG@sha256:...]... [--dead-end IMG@sha256:...]...
  bootc rollout list|show ROLLOUT|pause ROLLOUT|resume ROLLOUT|abort ROLLOUT   watch and steer rollouts in waves
  configdrive build --from DRIVE.json -o FILE [--encode] [--vfat] [--uuid U] [--name N]
  configdrive write DEVICE IMAGE
  configdrive show IMAGE|DEVICE
  ramdisk build --kernel-deb DEB [--agent BIN] [--init BIN] [-o DIR] [--profile server|vm] [--module NAME]... [--ca-cert FILE]... [--firmware-deb DEB]... [--cache DIR]
  demo [--image oci://...] [--bin DIR] [--disk-gib N]   (root) deploy onto a loop device here: see make demo

Environment: FERRIC_URL (default http://127.0.0.1:6385), FERRIC_USERNAME and FERRIC_PASSWORD for http_basic.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferric:", err)
		os.Exit(1)
	}
}

// cli holds the global options and the client.
type cli struct {
	url      string
	output   string
	user     string
	password string
	stdout   io.Writer
	stderr   io.Writer
	client   *gophercloud.ServiceClient
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &cli{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("ferric", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.StringVar(&c.url, "url", envOr("FERRIC_URL", "http://127.0.0.1:6385"), "bare-metal API base URL")
	fs.StringVar(&c.output, "o", "table", "output format: table or json")
	fs.StringVar(&c.user, "username", os.Getenv("FERRIC_USERNAME"), "user for http_basic")
	fs.StringVar(&c.password, "password", os.Getenv("FERRIC_PASSWORD"), "password for http_basic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("-o %q: use table or json", c.output)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	if h, ok := localCommands()[rest[0]]; ok {
		return h(ctx, rest[1:], stdout, stderr)
	}
	if err := c.connect(); err != nil {
		return err
	}
	if len(rest) < 2 {
		fs.Usage()
		return fmt.Errorf("%s: missing subcommand", rest[0])
	}
	switch rest[0] {
	case "node":
		return c.node(ctx, rest[1], rest[2:])
	case "port":
		return c.port(ctx, rest[1], rest[2:])
	case "driver":
		return c.driver(ctx, rest[1], rest[2:])
	case "fleetlock":
		return c.fleetlock(ctx, rest[1], rest[2:])
	case "bootc":
		return c.bootc(ctx, rest[1], rest[2:])
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", rest[0])
}

// localCommands run without an API connection.
func localCommands() map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
		"configdrive": runConfigdrive,
		"demo":        runDemo,
		"ramdisk":     runRamdisk,
	}
}

func (c *cli) connect() error {
	endpoint := strings.TrimRight(c.url, "/")
	if !strings.HasSuffix(endpoint, "/v1") {
		endpoint += "/v1"
	}
	var (
		sc  *gophercloud.ServiceClient
		err error
	)
	if c.user != "" {
		sc, err = httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{IronicEndpoint: endpoint, IronicUser: c.user, IronicUserPassword: c.password})
	} else {
		sc, err = noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: endpoint})
	}
	if err != nil {
		return fmt.Errorf("--url %s: %w", c.url, err)
	}
	sc.Microversion = "1.89"
	c.client = sc
	return nil
}

// printJSON writes v as indented JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under headers.
func (c *cli) table(headers []string, rows [][]string) {
	w := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
}

// fields writes name/value pairs.
func (c *cli) fields(pairs [][2]string) {
	w := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(w, "%s\t%s\n", p[0], p[1])
	}
	w.Flush()
}

// multiFlag collects repeated flags.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseKV turns k=v pairs into a map; values that parse as JSON (numbers, booleans, objects) keep their type.
func parseKV(flagName string, pairs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: use key=value", flagName, p)
		}
		out[k] = jsonValue(v)
	}
	return out, nil
}

func jsonValue(v string) any {
	var x any
	if err := json.Unmarshal([]byte(v), &x); err == nil {
		if _, isStr := x.(string); !isStr {
			return x
		}
	}
	return v
}

// parseFlags parses args allowing flags after positional arguments; it returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}
