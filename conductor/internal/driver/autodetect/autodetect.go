// Package autodetect owns the `autodetect` deploy interface (Ironic's AutodetectDeploy): it never deploys anything
// itself, it chooses which concrete deploy interface does. The candidates are --autodetect-deploy-interfaces in
// order; each candidate that implements driver.Detector is asked whether it can deploy the node's image, and the
// first that says yes is chosen. None does: the last candidate is the fallback (Ironic's rule). The engine switches
// the node to the choice before a deploy, rebuild, adopt or clean could reach this interface's own Deploy or
// Clean, so those refuse; recording and restoring the switch is the engine's (conductor/internal/engine).
package autodetect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Name is the interface's name, in deploy_interface and in the hardware types' enabled lists.
const Name = "autodetect"

// Keys in driver_internal_info, as Ironic spells the first: the interface the node had before the switch (restored
// when the node leaves deploy and clean), and Ferric's record of the choice.
const (
	KeyOriginal = "original_deploy_interface"
	KeyRecord   = "autodetect"
)

// DefaultDetectTimeout bounds one candidate's SupportsDeploy (a registry query, typically).
const DefaultDetectTimeout = 60 * time.Second

// Candidate is one entry of --autodetect-deploy-interfaces: its name and its implementation.
type Candidate struct {
	Name   string
	Deploy driver.Deploy
}

// Choice is the outcome of a detection.
type Choice struct {
	Name   string
	Deploy driver.Deploy
	// Detection is the chosen interface's answer; for a fallback its Reason says why nobody claimed the image.
	Detection driver.Detection
	// Fallback is set when no candidate supported the image and the last one was taken anyway.
	Fallback bool
}

// DetectError is a candidate that could not tell whether it supports the image (registry down, credentials
// refused). Autodetect refuses rather than guess: a wrong guess writes the wrong thing onto a disk. It matches
// driver.ErrInvalid (the API answers 400) and the candidate's own error.
type DetectError struct {
	Interface string
	Err       error
}

func (e *DetectError) Error() string {
	return fmt.Sprintf("autodetect: deploy interface %s could not tell whether it can deploy this node's image: %v "+
		"(fix the cause and retry, or set the node's deploy_interface to the interface you want)", e.Interface, e.Err)
}

// Unwrap makes the error match driver.ErrInvalid and the candidate's error.
func (e *DetectError) Unwrap() []error { return []error{driver.ErrInvalid, e.Err} }

// Interface is the autodetect deploy interface over an ordered list of candidates.
type Interface struct {
	cands   []Candidate
	timeout time.Duration
	log     *logrus.Entry
}

// New returns the interface over cands (in the order to ask them; the last is the fallback). timeout bounds each
// candidate's SupportsDeploy (0: DefaultDetectTimeout). It refuses an empty list and autodetect among the candidates.
func New(cands []Candidate, timeout time.Duration, log *logrus.Entry) (*Interface, error) {
	if len(cands) == 0 {
		return nil, errors.New("autodetect needs at least one deploy interface to choose from")
	}
	for _, c := range cands {
		if c.Name == Name || c.Deploy == nil {
			return nil, fmt.Errorf("autodetect cannot choose %q: name concrete deploy interfaces only", c.Name)
		}
	}
	if timeout <= 0 {
		timeout = DefaultDetectTimeout
	}
	return &Interface{cands: cands, timeout: timeout, log: log}, nil
}

// Names lists the candidates in order.
func (a *Interface) Names() []string {
	out := make([]string, len(a.cands))
	for i, c := range a.cands {
		out[i] = c.Name
	}
	return out
}

// Fallback is the last candidate: what a deploy gets when no candidate claims its image, and whose steps a clean
// of an autodetect node runs (a clean has no image to detect).
func (a *Interface) Fallback() Candidate { return a.cands[len(a.cands)-1] }

// Choose asks the candidates in order and returns the first that supports t.Node's image, else the last one with
// Fallback set. A candidate that is not a Detector is skipped (it can only be the fallback). The first candidate
// that cannot tell ends the detection with a *DetectError.
func (a *Interface) Choose(ctx context.Context, t *driver.Task) (Choice, error) {
	// The candidates share one memo: bootc and direct both identify an oci:// image, and ask the registry once.
	ctx = driver.WithMemo(ctx)
	var notes []string
	var last driver.Detection
	for i, c := range a.cands {
		det, ok := c.Deploy.(driver.Detector)
		if !ok {
			notes = append(notes, c.Name+": cannot detect")
			continue
		}
		d, err := a.ask(ctx, det, t)
		if err != nil {
			return Choice{}, &DetectError{Interface: c.Name, Err: err}
		}
		if d.Supported {
			return Choice{Name: c.Name, Deploy: c.Deploy, Detection: d}, nil
		}
		notes = append(notes, c.Name+": "+oneLine(d.Reason))
		if i == len(a.cands)-1 {
			last = d
		}
	}
	fb := a.cands[len(a.cands)-1]
	reason := fmt.Sprintf("no interface of --autodetect-deploy-interfaces (%s) claims this image (%s); using the last one, %s",
		strings.Join(a.Names(), ","), strings.Join(notes, "; "), fb.Name)
	return Choice{Name: fb.Name, Deploy: fb.Deploy, Fallback: true,
		Detection: driver.Detection{Reason: reason, Record: last.Record}}, nil
}

// ask runs one candidate's SupportsDeploy under the detection deadline.
func (a *Interface) ask(ctx context.Context, det driver.Detector, t *driver.Task) (driver.Detection, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return det.SupportsDeploy(ctx, t)
}

// oneLine keeps a reason on one line of the deploy log.
func oneLine(s string) string {
	if s == "" {
		return "not supported"
	}
	return strings.Join(strings.Fields(s), " ")
}

// Validate chooses as a deploy would and validates the chosen interface, as Ironic's AutodetectDeploy.validate
// does: GET /v1/nodes/{id}/validate shows the chosen interface's result. It builds a bare task (the node and a
// logger) for the detectors; the engine calls ValidateTask with the node's full task where it has one.
func (a *Interface) Validate(ctx context.Context, n *store.Node) error {
	return a.ValidateTask(ctx, &driver.Task{Node: n, Log: a.log.WithField("node", n.UUID)})
}

// ValidateTask is Validate with the caller's task.
func (a *Interface) ValidateTask(ctx context.Context, t *driver.Task) error {
	c, err := a.Choose(ctx, t)
	if err != nil {
		return err
	}
	if err := c.Deploy.Validate(ctx, t.Node); err != nil {
		return fmt.Errorf("%s (chosen by autodetect): %w", c.Name, err)
	}
	return nil
}

// errNotSwitched is what Deploy and Clean answer: the engine switches a node to a concrete interface before either
// could run, so reaching them is a bug (Ironic raises InstanceDeployFailure with the same meaning).
var errNotSwitched = errors.New("the autodetect deploy interface did not switch to a concrete interface before this " +
	"operation; this is a bug: set the node's deploy_interface to the interface you want and retry")

// Deploy refuses: see errNotSwitched.
func (a *Interface) Deploy(context.Context, *driver.Task) (driver.Outcome, error) {
	return driver.Done, errNotSwitched
}

// Clean refuses: see errNotSwitched.
func (a *Interface) Clean(context.Context, *driver.Task) (driver.Outcome, error) {
	return driver.Done, errNotSwitched
}

// TearDown does nothing: autodetect deployed nothing (the concrete interface it chose tears its own deploy down).
func (a *Interface) TearDown(context.Context, *driver.Task) error { return nil }

// DeployRecord returns the record of the detection that chose iface for the node's current deploy of src
// (driver_internal_info.autodetect), for the chosen interface to use what it judged; nil when autodetect did not
// choose iface for src in a deploy. The record is the node's own map: an interface removes what it uses once.
func DeployRecord(n *store.Node, iface, src string) map[string]any {
	dii := n.DriverInternalInfo
	rec, _ := dii[KeyRecord].(map[string]any)
	if orig, _ := dii[KeyOriginal].(string); orig != Name || rec == nil || rec["interface"] != iface ||
		rec["image_source"] != src || rec["operation"] != "deploy" {
		return nil
	}
	return rec
}
