package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

func (c *cli) port(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "create":
		fs := flag.NewFlagSet("port create", flag.ContinueOnError)
		fs.SetOutput(c.stderr)
		var opts ports.CreateOpts
		fs.StringVar(&opts.NodeUUID, "node", "", "node UUID or name (required)")
		fs.StringVar(&opts.Address, "address", "", "MAC address (required)")
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		if opts.NodeUUID == "" || opts.Address == "" {
			return errors.New("port create: --node and --address are required")
		}
		p, err := ports.Create(ctx, c.client, opts).Extract()
		if err != nil {
			return fmt.Errorf("create port: %w", err)
		}
		if c.output == "json" {
			return c.printJSON(p)
		}
		c.fields([][2]string{{"uuid", p.UUID}, {"address", p.Address}, {"node_uuid", p.NodeUUID}})
		return nil
	case "list":
		fs := flag.NewFlagSet("port list", flag.ContinueOnError)
		fs.SetOutput(c.stderr)
		var opts ports.ListOpts
		fs.StringVar(&opts.Node, "node", "", "only ports of this node")
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		var all []ports.Port
		err := ports.ListDetail(c.client, opts).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			ps, err := ports.ExtractPorts(p)
			all = append(all, ps...)
			return true, err
		})
		if err != nil {
			return fmt.Errorf("list ports: %w", err)
		}
		if c.output == "json" {
			if all == nil {
				all = []ports.Port{}
			}
			return c.printJSON(all)
		}
		var rows [][]string
		for _, p := range all {
			rows = append(rows, []string{p.UUID, p.Address, p.NodeUUID})
		}
		c.table([]string{"UUID", "ADDRESS", "NODE"}, rows)
		return nil
	case "delete":
		if len(args) == 0 {
			return errors.New("port delete: give at least one PORT UUID")
		}
		for _, id := range args {
			if err := ports.Delete(ctx, c.client, id).ExtractErr(); err != nil {
				return fmt.Errorf("delete port %s: %w", id, err)
			}
			fmt.Fprintf(c.stdout, "deleted port %s\n", id)
		}
		return nil
	}
	return fmt.Errorf("port %s: unknown subcommand; see ferric --help", verb)
}

func (c *cli) driver(ctx context.Context, verb string, args []string) error {
	if verb != "list" {
		return fmt.Errorf("driver %s: unknown subcommand; use driver list", verb)
	}
	all, err := drivers.ListDrivers(c.client, drivers.ListDriversOpts{Detail: true}).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("list drivers: %w", err)
	}
	ds, err := drivers.ExtractDrivers(all)
	if err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON(ds)
	}
	var rows [][]string
	for _, d := range ds {
		rows = append(rows, []string{d.Name, fmt.Sprint(d.Hosts), fmt.Sprint(d.EnabledDeployInterfaces)})
	}
	c.table([]string{"NAME", "HOSTS", "DEPLOY INTERFACES"}, rows)
	return nil
}
