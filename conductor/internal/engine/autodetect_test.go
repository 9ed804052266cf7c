package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fakeDetector is a fake deploy interface that claims images whose image_source starts with claims, fails its
// Validate when invalid is set, cannot tell when err is set, and offers one automated clean step
// (deploy.wipe_marker, priority 50, abortable) that fails when the node's driver_info has "fail_clean" and waits
// (as for an agent) when it has "wait_clean" (undeploy empties instance_info before cleaning).
type fakeDetector struct {
	driver.FakeDeploy
	name, claims string
	invalid      bool
	err          error
}

func (d *fakeDetector) SupportsDeploy(_ context.Context, t *driver.Task) (driver.Detection, error) {
	if d.err != nil {
		return driver.Detection{}, d.err
	}
	src, _ := t.Node.InstanceInfo["image_source"].(string)
	if strings.HasPrefix(src, d.claims) {
		return driver.Detection{Supported: true, Reason: d.name + " claims " + src,
			Record: map[string]any{"digest": "sha256:" + d.name, "interface": "overridden by the engine"}}, nil
	}
	return driver.Detection{Reason: "not a " + d.claims + " image"}, nil
}

func (d *fakeDetector) Validate(context.Context, *store.Node) error {
	if d.invalid {
		return fmt.Errorf("%s refuses this node: %w", d.name, driver.ErrInvalid)
	}
	return nil
}

func (d *fakeDetector) Steps(k steps.Kind) []steps.Step {
	out := d.FakeDeploy.Steps(k)
	if k == steps.Clean {
		out = append(out, steps.Step{Interface: "deploy", Step: "wipe_marker", Priority: 50, Abortable: true})
	}
	return out
}

func (d *fakeDetector) ExecuteStep(ctx context.Context, t *driver.Task, k steps.Kind, s steps.Step) (driver.Outcome, error) {
	if s.Step == "wipe_marker" {
		if _, fail := t.Node.DriverInfo["fail_clean"]; fail {
			return driver.Done, errors.New("wipe_marker failed")
		}
		if _, wait := t.Node.DriverInfo["wait_clean"]; wait {
			return driver.Wait, nil
		}
		t.Logf(ctx, "%s wiped the marker", d.name)
		return driver.Done, nil
	}
	return d.FakeDeploy.ExecuteStep(ctx, t, k, s)
}

// plainDeploy is a deploy interface that cannot detect: autodetect may take it only as the fallback.
type plainDeploy struct{ driver.FakeDeploy }

// autoFixture is the engine fixture with fake-hardware offering the given deploy interfaces and autodetect over
// them in that order.
func autoFixture(t *testing.T, cfg Config, cands ...autodetect.Candidate) *fixture {
	f := newFixture(t, cfg)
	names := []string{"fake", autodetect.Name}
	for _, c := range cands {
		f.eng.reg.AddDeploy(c.Name, c.Deploy)
		names = append(names, c.Name)
	}
	f.eng.reg.AddHardware(driver.FakeHardware(names[1:], nil))
	ad, err := autodetect.New(cands, 0, logrus.NewEntry(logrus.New()))
	require.NoError(t, err)
	f.eng.reg.AddDeploy(autodetect.Name, ad)
	return f
}

// autoNode creates an autodetect node in state with the given image_source.
func (f *fixture) autoNode(t *testing.T, state, image string) *store.Node {
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: state,
		Interfaces:   map[string]string{"deploy": autodetect.Name},
		InstanceInfo: map[string]any{"image_source": image}, DriverInternalInfo: map[string]any{}}
	require.NoError(t, f.eng.CreateNode(context.Background(), n))
	return n
}

// provision runs a provision verb to its end and returns the saved node.
func (f *fixture) provision(t *testing.T, uuid, target string) (*store.Node, error) {
	err := f.eng.Provision(context.Background(), uuid, ProvisionRequest{Target: target})
	f.eng.Wait()
	got, gerr := f.st.GetNode(context.Background(), uuid)
	require.NoError(t, gerr)
	return got, err
}

// logText is the node's latest deploy log run as one string.
func (f *fixture) logText(t *testing.T, uuid string) string {
	lines, err := f.st.DeployLog(context.Background(), uuid, "")
	require.NoError(t, err)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

func cand(name string, d driver.Deploy) autodetect.Candidate {
	return autodetect.Candidate{Name: name, Deploy: d}
}

func imgDisk() (*fakeDetector, *fakeDetector) {
	return &fakeDetector{name: "img", claims: "oci://"}, &fakeDetector{name: "disk", claims: "http"}
}

// TestAutodetectChoosesOnDeploy: the first candidate that claims the image is chosen, a candidate that cannot
// detect only as the fallback, and the last one when nobody claims the image (with a warning in the deploy log).
// The choice is on the node while it is active, recorded in driver_internal_info and named in the deploy log.
func TestAutodetectChoosesOnDeploy(t *testing.T) {
	img, disk := imgDisk()
	plain := &plainDeploy{}
	for _, tc := range []struct {
		name, image string
		cands       []autodetect.Candidate
		want        string
		fallback    bool
		wantLog     string
	}{
		{"container image", "oci://quay.io/x/os:1", []autodetect.Candidate{cand("img", img), cand("disk", disk)}, "img", false,
			"autodetect chose deploy interface img: img claims oci://quay.io/x/os:1"},
		{"disk image", "https://h/os.qcow2", []autodetect.Candidate{cand("img", img), cand("disk", disk)}, "disk", false,
			"autodetect chose deploy interface disk: disk claims https://h/os.qcow2"},
		{"nobody claims it: the last", "ftp://h/os.raw", []autodetect.Candidate{cand("img", img), cand("disk", disk)}, "disk", true,
			"WARNING: autodetect: no interface of --autodetect-deploy-interfaces (img,disk) claims this image (img: not a oci:// image; disk: not a http image); using the last one, disk"},
		{"a non-detector first is skipped", "oci://quay.io/x/os:1", []autodetect.Candidate{cand("plain", plain), cand("img", img)}, "img", false,
			"autodetect chose deploy interface img"},
		{"a non-detector last is the fallback", "https://h/os.qcow2", []autodetect.Candidate{cand("img", img), cand("plain", plain)}, "plain", true,
			"(img: not a oci:// image; plain: cannot detect); using the last one, plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := autoFixture(t, Config{}, tc.cands...)
			n := f.autoNode(t, "available", tc.image)
			got, err := f.provision(t, n.UUID, "active")
			require.NoError(t, err)
			assert.Equal(t, "active", got.ProvisionState, got.LastError)
			assert.Equal(t, tc.want, got.Interfaces["deploy"], "the node shows the concrete interface while active")
			assert.Equal(t, autodetect.Name, got.DriverInternalInfo[autodetect.KeyOriginal])
			rec, _ := got.DriverInternalInfo[autodetect.KeyRecord].(map[string]any)
			require.NotNil(t, rec)
			assert.Equal(t, tc.want, rec["interface"], "the engine's key wins over the detector's record")
			assert.Equal(t, "deploy", rec["operation"])
			assert.NotEmpty(t, rec["reason"])
			assert.NotEmpty(t, rec["detected_at"])
			if tc.fallback {
				assert.Equal(t, true, rec["fallback"])
			} else {
				assert.Equal(t, "sha256:"+tc.want, rec["digest"], "the detector's record is kept")
				assert.NotContains(t, rec, "fallback")
			}
			assert.Contains(t, f.logText(t, n.UUID), tc.wantLog)
		})
	}
}

// TestAutodetectCannotTellRefuses: a candidate that cannot tell refuses the deploy with a 400 naming it and the
// cause, and the node is saved exactly as it was.
func TestAutodetectCannotTellRefuses(t *testing.T) {
	img := &fakeDetector{name: "img", claims: "oci://", err: errors.New("registry quay.io: 401 unauthorized")}
	_, disk := imgDisk()
	f := autoFixture(t, Config{}, cand("img", img), cand("disk", disk))
	n := f.autoNode(t, "available", "oci://quay.io/x/os:1")
	before, err := f.st.GetNode(context.Background(), n.UUID)
	require.NoError(t, err)

	got, err := f.provision(t, n.UUID, "active")
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "deploy interface img could not tell")
	assert.Contains(t, err.Error(), "registry quay.io: 401 unauthorized")
	assert.Equal(t, "available", got.ProvisionState)
	assert.Equal(t, autodetect.Name, got.Interfaces["deploy"])
	assert.Equal(t, before.DriverInternalInfo, got.DriverInternalInfo, "nothing of the refused request is saved")
	assert.Empty(t, got.Reservation)
}

// TestAutodetectRestores: the original interface comes back when the undeploy's cleaning finishes, is skipped,
// fails or is aborted.
func TestAutodetectRestores(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		failClean bool
		wantState string
	}{
		{"cleaning done", Config{}, false, "available"},
		{"cleaning skipped", Config{NoAutomatedClean: true}, false, "available"},
		{"cleaning failed", Config{}, true, "clean failed"},
		{"cleaning aborted", Config{}, false, "clean failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, disk := imgDisk()
			f := autoFixture(t, tc.cfg, cand("img", img), cand("disk", disk))
			n := f.autoNode(t, "available", "oci://quay.io/x/os:1")
			got, err := f.provision(t, n.UUID, "active")
			require.NoError(t, err)
			require.Equal(t, "img", got.Interfaces["deploy"])
			if tc.failClean {
				setDriverInfo(t, f, n.UUID, "fail_clean")
			}
			if tc.name == "cleaning aborted" {
				setDriverInfo(t, f, n.UUID, "wait_clean")
				got, err = f.provision(t, n.UUID, "deleted")
				require.NoError(t, err)
				require.Equal(t, "clean wait", got.ProvisionState, got.LastError)
				require.Equal(t, "img", got.Interfaces["deploy"], "the undeploy cleans with the interface that deployed")
				got, err = f.provision(t, n.UUID, "abort")
			} else {
				got, err = f.provision(t, n.UUID, "deleted")
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState, got.LastError)
			assert.Equal(t, autodetect.Name, got.Interfaces["deploy"])
			assert.NotContains(t, got.DriverInternalInfo, autodetect.KeyOriginal)
			if !tc.cfg.NoAutomatedClean {
				assert.Contains(t, f.logText(t, n.UUID), "clean steps: deploy.wipe_marker (priority 50)",
					"the undeploy cleaned with the interface that deployed")
			}
		})
	}
}

// setInstanceInfo sets one instance_info key of a resting node, under a reservation as the API would.
func setInstanceInfo(t *testing.T, f *fixture, id, k string, v any) {
	ctx := context.Background()
	n, err := f.st.Reserve(ctx, id, "test-setup")
	require.NoError(t, err)
	n.InstanceInfo[k] = v
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, id, "test-setup"))
}

// setDriverInfo sets driver_info[k]=true on a resting node.
func setDriverInfo(t *testing.T, f *fixture, id, k string) {
	ctx := context.Background()
	n, err := f.st.Reserve(ctx, id, "test-setup")
	require.NoError(t, err)
	n.DriverInfo = map[string]any{k: true}
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, id, "test-setup"))
}

// TestAutodetectRebuildDetectsAgain: a rebuild of a node autodetect switched detects again (the new image is of
// another kind); a deploy interface the operator set by hand since is obeyed.
func TestAutodetectRebuildDetectsAgain(t *testing.T) {
	img, disk := imgDisk()
	f := autoFixture(t, Config{}, cand("img", img), cand("disk", disk))
	n := f.autoNode(t, "available", "oci://quay.io/x/os:1")
	got, err := f.provision(t, n.UUID, "active")
	require.NoError(t, err)
	require.Equal(t, "img", got.Interfaces["deploy"])

	setInstanceInfo(t, f, n.UUID, "image_source", "https://h/os.qcow2")
	got, err = f.provision(t, n.UUID, "rebuild")
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState, got.LastError)
	assert.Equal(t, "disk", got.Interfaces["deploy"])
	assert.Equal(t, autodetect.Name, got.DriverInternalInfo[autodetect.KeyOriginal])
	assert.Contains(t, f.logText(t, n.UUID), "autodetect chose deploy interface disk: disk claims https://h/os.qcow2")

	// An active node's interfaces change only in maintenance (Ironic's update_node).
	_, err = f.eng.UpdateNode(context.Background(), n.UUID, func(n *store.Node) error {
		n.Maintenance = true
		n.Interfaces["deploy"] = "fake"
		return nil
	})
	require.NoError(t, err)
	_, err = f.eng.UpdateNode(context.Background(), n.UUID, func(n *store.Node) error {
		n.Maintenance = false
		return nil
	})
	require.NoError(t, err)
	got, err = f.provision(t, n.UUID, "rebuild")
	require.NoError(t, err)
	assert.Equal(t, "fake", got.Interfaces["deploy"], "an interface set by hand is not detected over")
}

// TestAutodetectAdopt: adopt switches as a deploy does; a failed adopt restores autodetect.
func TestAutodetectAdopt(t *testing.T) {
	for _, tc := range []struct {
		name              string
		invalid           bool
		wantState, wantIf string
	}{
		{"adopted", false, "active", "img"},
		{"chosen interface refuses", true, "adopt failed", autodetect.Name},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := &fakeDetector{name: "img", claims: "oci://", invalid: tc.invalid}
			_, disk := imgDisk()
			f := autoFixture(t, Config{}, cand("img", img), cand("disk", disk))
			n := f.autoNode(t, "manageable", "oci://quay.io/x/os:1")
			got, err := f.provision(t, n.UUID, "adopt")
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState, got.LastError)
			assert.Equal(t, tc.wantIf, got.Interfaces["deploy"])
			if tc.invalid {
				assert.Contains(t, got.LastError, "img refuses this node")
				assert.NotContains(t, got.DriverInternalInfo, autodetect.KeyOriginal)
			} else {
				assert.Equal(t, autodetect.Name, got.DriverInternalInfo[autodetect.KeyOriginal])
			}
		})
	}
}

// TestAutodetectProvideCleansWithFallback: provide of an autodetect node has no image to detect; it cleans with the
// fallback's steps and comes back on autodetect.
func TestAutodetectProvideCleansWithFallback(t *testing.T) {
	img, disk := imgDisk()
	f := autoFixture(t, Config{}, cand("img", img), cand("disk", disk))
	n := f.autoNode(t, "manageable", "")
	got, err := f.provision(t, n.UUID, "provide")
	require.NoError(t, err)
	assert.Equal(t, "available", got.ProvisionState, got.LastError)
	assert.Equal(t, autodetect.Name, got.Interfaces["deploy"])
	assert.NotContains(t, got.DriverInternalInfo, autodetect.KeyOriginal)
	log := f.logText(t, n.UUID)
	assert.Contains(t, log, "disk wiped the marker")
	assert.Contains(t, log, "a clean has no image to detect: the clean steps of disk")
}

// TestAutodetectValidate: GET validate shows the chosen interface's result for an autodetect node.
func TestAutodetectValidate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		img        *fakeDetector
		wantResult bool
		wantReason string
	}{
		{"chosen interface accepts", &fakeDetector{name: "img", claims: "oci://"}, true, ""},
		{"chosen interface refuses", &fakeDetector{name: "img", claims: "oci://", invalid: true}, false, "img (chosen by autodetect): img refuses this node"},
		{"cannot tell", &fakeDetector{name: "img", claims: "oci://", err: errors.New("registry down")}, false, "could not tell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, disk := imgDisk()
			f := autoFixture(t, Config{}, cand("img", tc.img), cand("disk", disk))
			n := f.autoNode(t, "available", "oci://quay.io/x/os:1")
			res, err := f.eng.Validate(context.Background(), n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantResult, res["deploy"].Result)
			assert.Contains(t, res["deploy"].Reason, tc.wantReason)
		})
	}
}

// TestAutodetectCleanSwitches: a manual clean of an autodetect node checks its steps against the fallback's offer
// (a step nobody offers is a 400, the node unchanged), and a node that reaches cleaning still on autodetect (set
// by hand while deployed) cleans with the fallback and comes back on autodetect.
func TestAutodetectCleanSwitches(t *testing.T) {
	img, disk := imgDisk()
	f := autoFixture(t, Config{}, cand("img", img), cand("disk", disk))
	ctx := context.Background()

	n := f.autoNode(t, "manageable", "")
	err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean",
		CleanSteps: []map[string]any{{"interface": "deploy", "step": "no_such_step"}}})
	require.ErrorIs(t, err, ErrInvalidInput)
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState)
	assert.Equal(t, autodetect.Name, got.Interfaces["deploy"])
	assert.NotContains(t, got.DriverInternalInfo, autodetect.KeyOriginal)

	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean",
		CleanSteps: []map[string]any{{"interface": "deploy", "step": "wipe_marker"}}}))
	f.eng.Wait()
	got, err = f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState, got.LastError)
	assert.Equal(t, autodetect.Name, got.Interfaces["deploy"])
	assert.Contains(t, f.logText(t, n.UUID), "disk wiped the marker")

	active := f.autoNode(t, "active", "oci://quay.io/x/os:1")
	got, err = f.provision(t, active.UUID, "deleted")
	require.NoError(t, err)
	assert.Equal(t, "available", got.ProvisionState, got.LastError)
	assert.Equal(t, autodetect.Name, got.Interfaces["deploy"])
	assert.Contains(t, f.logText(t, active.UUID), "disk wiped the marker")
}
