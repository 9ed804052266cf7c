package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

func interfaceKinds() []string {
	return []string{"bios", "boot", "console", "deploy", "firmware", "inspect", "management", "network", "power",
		"raid", "rescue", "storage", "vendor"}
}

func (c *cli) node(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "create":
		return c.nodeCreate(ctx, args)
	case "list":
		return c.nodeList(ctx, args)
	case "show":
		return c.nodeShow(ctx, args)
	case "set":
		return c.nodeSet(ctx, args)
	case "unset":
		return c.nodeUnset(ctx, args)
	case "delete":
		return c.nodeDelete(ctx, args)
	case "manage", "provide", "undeploy", "deploy", "rebuild", "abort", "inspect":
		return c.nodeProvision(ctx, verb, args)
	case "power":
		return c.nodePower(ctx, args)
	case "wait":
		return c.nodeWait(ctx, args)
	case "logs":
		return c.nodeLogs(ctx, args)
	}
	return fmt.Errorf("node %s: unknown subcommand; see ferric --help", verb)
}

func (c *cli) nodeCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node create", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var (
		opts                     nodes.CreateOpts
		driverInfo, props, extra multiFlag
		ifaces                   = map[string]*string{}
	)
	fs.StringVar(&opts.Driver, "driver", "", "hardware type (required), e.g. fake-hardware or redfish")
	fs.StringVar(&opts.Name, "name", "", "node name")
	fs.StringVar(&opts.UUID, "uuid", "", "node UUID (default: generated)")
	fs.StringVar(&opts.ResourceClass, "resource-class", "", "resource class")
	fs.Var(&driverInfo, "driver-info", "driver_info key=value (repeatable)")
	fs.Var(&props, "property", "properties key=value (repeatable)")
	fs.Var(&extra, "extra", "extra key=value (repeatable)")
	for _, k := range interfaceKinds() {
		ifaces[k] = fs.String(k+"-interface", "", k+" interface")
	}
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if opts.Driver == "" {
		return errors.New("node create: --driver is required (e.g. --driver fake-hardware)")
	}
	var err error
	if opts.DriverInfo, err = parseKV("driver-info", driverInfo); err != nil {
		return err
	}
	if opts.Properties, err = parseKV("property", props); err != nil {
		return err
	}
	if opts.Extra, err = parseKV("extra", extra); err != nil {
		return err
	}
	opts.BootInterface, opts.DeployInterface, opts.PowerInterface = *ifaces["boot"], *ifaces["deploy"], *ifaces["power"]
	opts.ManagementInterface, opts.NetworkInterface, opts.InspectInterface = *ifaces["management"], *ifaces["network"], *ifaces["inspect"]
	opts.ConsoleInterface, opts.RAIDInterface, opts.RescueInterface = *ifaces["console"], *ifaces["raid"], *ifaces["rescue"]
	opts.StorageInterface, opts.VendorInterface, opts.BIOSInterface = *ifaces["storage"], *ifaces["vendor"], *ifaces["bios"]
	opts.FirmwareInterface = *ifaces["firmware"]
	n, err := nodes.Create(ctx, c.client, opts).Extract()
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	return c.showNode(n)
}

func (c *cli) nodeList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node list", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var opts nodes.ListOpts
	detail := fs.Bool("detail", false, "show every field")
	fs.StringVar((*string)(&opts.ProvisionState), "provision-state", "", "only nodes in this provision state")
	fs.StringVar(&opts.Driver, "driver", "", "only nodes with this driver")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var all []nodes.Node
	pager := nodes.ListDetail(c.client, opts)
	err := pager.EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ns, err := nodes.ExtractNodes(p)
		all = append(all, ns...)
		return true, err
	})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	if c.output == "json" {
		if all == nil {
			all = []nodes.Node{}
		}
		return c.printJSON(all)
	}
	headers := []string{"UUID", "NAME", "POWER", "PROVISION STATE", "MAINTENANCE"}
	if *detail {
		headers = append(headers, "DRIVER", "DEPLOY", "LAST ERROR")
	}
	var rows [][]string
	for _, n := range all {
		row := []string{n.UUID, n.Name, n.PowerState, n.ProvisionState, fmt.Sprint(n.Maintenance)}
		if *detail {
			row = append(row, n.Driver, n.DeployInterface, n.LastError)
		}
		rows = append(rows, row)
	}
	c.table(headers, rows)
	return nil
}

func (c *cli) nodeShow(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("node show: give one NODE (UUID or name)")
	}
	n, err := nodes.Get(ctx, c.client, args[0]).Extract()
	if err != nil {
		return fmt.Errorf("show node %s: %w", args[0], err)
	}
	return c.showNode(n)
}

func (c *cli) showNode(n *nodes.Node) error {
	if c.output == "json" {
		return c.printJSON(n)
	}
	pairs := [][2]string{{"uuid", n.UUID}, {"name", n.Name}, {"driver", n.Driver},
		{"provision_state", n.ProvisionState}, {"target_provision_state", n.TargetProvisionState},
		{"power_state", n.PowerState}, {"maintenance", fmt.Sprint(n.Maintenance)}, {"last_error", n.LastError},
		{"deploy_interface", n.DeployInterface}, {"boot_interface", n.BootInterface}, {"power_interface", n.PowerInterface},
		{"driver_info", str(n.DriverInfo)}, {"properties", str(n.Properties)}, {"instance_info", str(n.InstanceInfo)},
		{"extra", str(n.Extra)}}
	keys := make([]string, 0, len(n.DriverInternalInfo))
	for k := range n.DriverInternalInfo {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pairs = append(pairs, [2]string{"internal." + k, str(n.DriverInternalInfo[k])})
	}
	c.fields(pairs)
	return nil
}

// patchFlags registers the dict flags shared by set and unset.
type patchFlags struct {
	driverInfo, props, instanceInfo, extra multiFlag
}

func (p *patchFlags) register(fs *flag.FlagSet, suffix string) {
	fs.Var(&p.driverInfo, "driver-info", "driver_info "+suffix+" (repeatable)")
	fs.Var(&p.props, "property", "properties "+suffix+" (repeatable)")
	fs.Var(&p.instanceInfo, "instance-info", "instance_info "+suffix+" (repeatable)")
	fs.Var(&p.extra, "extra", "extra "+suffix+" (repeatable)")
}

func (p *patchFlags) each(fn func(field string, items []string) error) error {
	for _, f := range []struct {
		field string
		items []string
	}{{"driver_info", p.driverInfo}, {"properties", p.props}, {"instance_info", p.instanceInfo}, {"extra", p.extra}} {
		if err := fn(f.field, f.items); err != nil {
			return err
		}
	}
	return nil
}

func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func (c *cli) nodeSet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node set", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var pf patchFlags
	pf.register(fs, "key=value")
	name := fs.String("name", "", "new name")
	maint := fs.String("maintenance", "", "true or false")
	ifaces := map[string]*string{}
	for _, k := range interfaceKinds() {
		ifaces[k] = fs.String(k+"-interface", "", k+" interface")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("node set: give one NODE")
	}
	var ops nodes.UpdateOpts
	err = pf.each(func(field string, items []string) error {
		kv, err := parseKV(strings.ReplaceAll(field, "_", "-"), items)
		if err != nil {
			return err
		}
		for k, v := range kv {
			ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/" + field + "/" + escapePointer(k), Value: v})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *name != "" {
		ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/name", Value: *name})
	}
	if *maint != "" {
		ops = append(ops, nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/maintenance", Value: *maint})
	}
	for _, k := range interfaceKinds() {
		if v := *ifaces[k]; v != "" {
			ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/" + k + "_interface", Value: v})
		}
	}
	if len(ops) == 0 {
		return errors.New("node set: nothing to set; see ferric --help")
	}
	n, err := nodes.Update(ctx, c.client, pos[0], ops).Extract()
	if err != nil {
		return fmt.Errorf("update node %s: %w", pos[0], err)
	}
	return c.showNode(n)
}

func (c *cli) nodeUnset(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node unset", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var pf patchFlags
	pf.register(fs, "key")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("node unset: give one NODE")
	}
	var ops nodes.UpdateOpts
	pf.each(func(field string, items []string) error {
		for _, k := range items {
			ops = append(ops, nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/" + field + "/" + escapePointer(k)})
		}
		return nil
	})
	if len(ops) == 0 {
		return errors.New("node unset: nothing to unset; see ferric --help")
	}
	n, err := nodes.Update(ctx, c.client, pos[0], ops).Extract()
	if err != nil {
		return fmt.Errorf("update node %s: %w", pos[0], err)
	}
	return c.showNode(n)
}

func (c *cli) nodeDelete(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("node delete: give at least one NODE")
	}
	for _, id := range args {
		if err := nodes.Delete(ctx, c.client, id).ExtractErr(); err != nil {
			return fmt.Errorf("delete node %s: %w", id, err)
		}
		fmt.Fprintf(c.stdout, "deleted node %s\n", id)
	}
	return nil
}

// targetOf maps CLI verbs to provision targets and the state that ends the wait.
func targetOf(verb string) (nodes.TargetProvisionState, string) {
	switch verb {
	case "manage":
		return nodes.TargetManage, "manageable"
	case "provide":
		return nodes.TargetProvide, "available"
	case "deploy":
		return nodes.TargetActive, "active"
	case "rebuild":
		return nodes.TargetRebuild, "active"
	case "undeploy":
		return nodes.TargetDeleted, "available"
	case "abort":
		return nodes.TargetAbort, ""
	case "inspect":
		return nodes.TargetInspect, "manageable"
	}
	return "", ""
}

func (c *cli) nodeProvision(ctx context.Context, verb string, args []string) error {
	fs := flag.NewFlagSet("node "+verb, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	wait := fs.Bool("wait", false, "wait until the node reaches the end state (stops early on failure)")
	timeout := fs.Duration("timeout", 60*time.Minute, "how long --wait waits")
	var (
		configDrive             *string
		image, keysFile, secret *string
		tpm                     *bool
	)
	if verb == "deploy" || verb == "rebuild" {
		configDrive = fs.String("configdrive", "", "config drive: a JSON file with Ironic's dict form, a gzip+base64 file, or an http(s) URL")
		image = fs.String("image", "", "bootable container to deploy, oci://registry/org/image:tag (sets instance_info.image_source)")
		keysFile = fs.String("authorized-keys", "", "file of SSH public keys for root (sets instance_info.bootc_authorized_keys)")
		secret = fs.String("pull-secret", "", "registry secret: user:password, a docker auth value, or a token (sets instance_info.image_pull_secret)")
		tpm = fs.Bool("tpm2-luks", false, "encrypt the root with LUKS bound to the TPM (sets instance_info.bootc_tpm2_luks)")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("node %s: give one NODE", verb)
	}
	if image != nil {
		if err := c.setDeployOptions(ctx, pos[0], *image, *keysFile, *secret, *tpm); err != nil {
			return err
		}
	}
	target, end := targetOf(verb)
	opts := nodes.ProvisionStateOpts{Target: target}
	if configDrive != nil && *configDrive != "" {
		cd, err := loadConfigDrive(*configDrive)
		if err != nil {
			return err
		}
		opts.ConfigDrive = cd
	}
	if err := nodes.ChangeProvisionState(ctx, c.client, pos[0], opts).ExtractErr(); err != nil {
		return fmt.Errorf("%s node %s: %w", verb, pos[0], err)
	}
	if !*wait || end == "" {
		fmt.Fprintf(c.stdout, "%s requested for node %s\n", verb, pos[0])
		return nil
	}
	return c.waitFor(ctx, pos[0], end, *timeout)
}

// setDeployOptions writes the bootc deploy options given on the command line into instance_info.
func (c *cli) setDeployOptions(ctx context.Context, node, image, keysFile, secret string, tpm bool) error {
	var ops nodes.UpdateOpts
	add := func(k string, v any) {
		ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/" + k, Value: v})
	}
	if image != "" {
		if !strings.HasPrefix(image, "oci://") {
			return fmt.Errorf("--image %q: use oci://registry/org/image:tag", image)
		}
		add("image_source", image)
	}
	if keysFile != "" {
		b, err := os.ReadFile(keysFile)
		if err != nil {
			return fmt.Errorf("--authorized-keys: %w", err)
		}
		add("bootc_authorized_keys", string(b))
	}
	if secret != "" {
		add("image_pull_secret", secret)
	}
	if tpm {
		add("bootc_tpm2_luks", true)
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := nodes.Update(ctx, c.client, node, ops).Extract(); err != nil {
		return fmt.Errorf("set deploy options on %s: %w", node, err)
	}
	return nil
}

// loadConfigDrive reads a config drive argument: a URL, a JSON dict file, or a file holding the string form.
func loadConfigDrive(arg string) (any, error) {
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("--configdrive: %w", err)
	}
	if v := jsonValue(strings.TrimSpace(string(b))); v != nil {
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
	}
	return strings.TrimSpace(string(b)), nil
}

// failureStates end a wait early.
func failureStates() map[string]bool {
	return map[string]bool{"deploy failed": true, "clean failed": true, "inspect failed": true, "error": true,
		"rescue failed": true, "adopt failed": true, "service failed": true, "unrescue failed": true}
}

// waitFor polls the node until it reaches state (with no target), fails, or the timeout passes.
func (c *cli) waitFor(ctx context.Context, id, state string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	last := ""
	for {
		n, err := nodes.Get(ctx, c.client, id).Extract()
		if err != nil {
			return fmt.Errorf("wait for node %s: %w", id, err)
		}
		line := n.ProvisionState
		if p, ok := n.DriverInternalInfo["deploy_progress"].(map[string]any); ok && n.TargetProvisionState != "" {
			line += fmt.Sprintf("  %v", p["phase"])
			if pct, _ := p["percent"].(float64); pct > 0 {
				line += fmt.Sprintf(" %.0f%%", pct)
			}
			if done, _ := p["bytes_done"].(float64); done > 0 {
				line += fmt.Sprintf(" (%d/%d MiB)", int64(done)>>20, int64(p["bytes_total"].(float64))>>20)
			}
		}
		if line != last {
			fmt.Fprintf(c.stderr, "%6.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		if n.ProvisionState == state && n.TargetProvisionState == "" {
			fmt.Fprintf(c.stdout, "node %s is %s after %.1fs\n", id, state, time.Since(start).Seconds())
			if inst, ok := n.DriverInternalInfo["bootc_installed"].(map[string]any); ok && state == "active" {
				fmt.Fprintf(c.stdout, "installed %v\n  digest  %v\n  disk    %v (root %v MiB)\n  phases  %v\n",
					inst["image"], inst["digest"], inst["device"], inst["root_size_mib"], inst["phases"])
			}
			return nil
		}
		if failureStates()[n.ProvisionState] && n.ProvisionState != state {
			return fmt.Errorf("node %s is %s: %s", id, n.ProvisionState, n.LastError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s still %s after %s (waiting for %s)", id, n.ProvisionState, timeout, state)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *cli) nodeWait(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node wait", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	timeout := fs.Duration("timeout", 60*time.Minute, "how long to wait")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("node wait: give NODE and STATE, e.g. ferric node wait n1 active")
	}
	return c.waitFor(ctx, pos[0], pos[1], *timeout)
}

func (c *cli) nodePower(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("node power: give NODE and one of on, off, reboot, soft-off, soft-reboot")
	}
	target := map[string]nodes.TargetPowerState{"on": nodes.PowerOn, "off": nodes.PowerOff, "reboot": nodes.Rebooting,
		"soft-off": nodes.SoftPowerOff, "soft-reboot": nodes.SoftRebooting}[args[1]]
	if target == "" {
		return fmt.Errorf("node power %s: use on, off, reboot, soft-off or soft-reboot", args[1])
	}
	if err := nodes.ChangePowerState(ctx, c.client, args[0], nodes.PowerStateOpts{Target: target}).ExtractErr(); err != nil {
		return fmt.Errorf("power %s node %s: %w", args[1], args[0], err)
	}
	fmt.Fprintf(c.stdout, "power %s requested for node %s\n", args[1], args[0])
	return nil
}

func (c *cli) nodeLogs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node logs", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	run := fs.String("run", "", "deploy run id (default: the latest)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("node logs: give one NODE")
	}
	u := c.client.ServiceURL("nodes", pos[0], "deploy_logs")
	if *run != "" {
		u += "?run=" + *run
	}
	var body struct {
		Run   string `json:"run"`
		Lines []struct {
			Time    string `json:"time"`
			Source  string `json:"source"`
			Message string `json:"message"`
		} `json:"lines"`
	}
	if _, err := c.client.Get(ctx, u, &body, nil); err != nil {
		return fmt.Errorf("deploy log of %s: %w", pos[0], err)
	}
	if c.output == "json" {
		return c.printJSON(body)
	}
	fmt.Fprintf(c.stdout, "deploy run %s\n", body.Run)
	for _, l := range body.Lines {
		fmt.Fprintf(c.stdout, "%s %-9s %s\n", l.Time, l.Source, l.Message)
	}
	return nil
}
