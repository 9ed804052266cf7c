package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
)

// resumeDeploy is a deploy interface shaped like the agent ones: the core step boots the "agent" (Wait), write
// runs on it (Wait, followed by Continue), check is an in-band step, boot_instance finishes at once, and explode
// is a step it cannot carry on. It records the steps it ran and says how each is resumed, as agentdeploy does.
type resumeDeploy struct {
	driver.FakeDeploy
	mu  sync.Mutex
	ran []string
}

func (d *resumeDeploy) Steps(kind steps.Kind) []steps.Step {
	if kind != steps.Deploy {
		return nil
	}
	return []steps.Step{{Interface: "deploy", Step: "deploy", Priority: 100}, {Interface: "deploy", Step: "explode", Priority: 90},
		{Interface: "deploy", Step: "write", Priority: 80}, {Interface: "deploy", Step: "check", Priority: 70, InBand: true},
		{Interface: "deploy", Step: "boot_instance", Priority: 20}}
}

func (d *resumeDeploy) ExecuteStep(_ context.Context, _ *driver.Task, _ steps.Kind, s steps.Step) (driver.Outcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ran = append(d.ran, s.Step)
	if s.Step == "boot_instance" || s.Step == "explode" {
		return driver.Done, nil
	}
	return driver.Wait, nil
}

// Deploy is the core step (the engine runs it as the interface's Deploy): it boots the "agent".
func (d *resumeDeploy) Deploy(context.Context, *driver.Task) (driver.Outcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ran = append(d.ran, "deploy")
	return driver.Wait, nil
}

func (d *resumeDeploy) Continue(context.Context, *driver.Task) (driver.Outcome, error) {
	return driver.Done, nil
}

func (d *resumeDeploy) ResumeStep(_ steps.Kind, s steps.Step) driver.Resume {
	switch {
	case s.InBand || s.Step == "write":
		return driver.ResumeWait
	case s.Step == "deploy" || s.Step == "boot_instance":
		return driver.ResumeRerun
	}
	return driver.ResumeNever
}

func (d *resumeDeploy) steps() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.ran...)
}

// TestDeployCarriedOn: a deploy whose conductor died (take-over) or restarted (Recover) in the middle of a step
// is carried on as its interface allows: the core step and the conductor-side steps run again, a step the agent
// runs (write, in-band) is followed by waiting for the agent without running it again, a step that cannot be
// carried on fails the node with Ironic's message, and a deploy whose steps were never planned starts over.
func TestDeployCarriedOn(t *testing.T) {
	plan := (&resumeDeploy{}).Steps(steps.Deploy) // in run order: deploy, explode, write, check, boot_instance
	for name, tc := range map[string]struct {
		step      int // the index of the step the conductor died in; -1: no plan yet
		restart   bool
		state     string
		ran       []string
		lastError string
	}{
		"core step runs again":         {step: 0, state: "wait call-back", ran: []string{"deploy"}},
		"agent's write is followed":    {step: 2, state: "wait call-back"},
		"in-band step is followed":     {step: 3, state: "wait call-back"},
		"boot_instance runs again":     {step: 4, state: "active", ran: []string{"boot_instance"}},
		"unplanned deploy starts over": {step: -1, state: "wait call-back", ran: []string{"deploy"}},
		"other step fails":             {step: 1, state: "deploy failed", lastError: "The deploying state can't be resumed by conductor h1: conductor pod-aaaa"},
		"restart: write is followed":   {step: 2, restart: true, state: "wait call-back"},
		"restart: other step fails":    {step: 1, restart: true, state: "deploy failed", lastError: "The deploying state can't be resumed by conductor h1. Moving to fail state."},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ring := &fixedRing{mine: map[string]bool{}, dead: []string{"pod-aaaa"}}
			f := newFixture(t, Config{Ring: ring})
			d := &resumeDeploy{}
			f.eng.reg.AddDeploy("fake", d)
			n := f.node(t, "deploying")
			ring.mine[n.UUID] = true
			holder := "pod-aaaa"
			if tc.restart {
				holder = f.eng.Host()
			}
			f.leftMidDeploy(t, n.UUID, holder, plan, tc.step)

			if tc.restart {
				require.NoError(t, f.eng.Recover(ctx))
			} else {
				f.eng.takeOver(ctx)
			}
			f.eng.Wait()

			got := f.get(t, n.UUID)
			assert.Equal(t, tc.state, got.ProvisionState)
			assert.Empty(t, got.Reservation, "released")
			assert.Equal(t, tc.ran, d.steps(), "the steps run again (none for a step the agent runs)")
			if tc.lastError != "" {
				assert.Contains(t, got.LastError, tc.lastError)
				return
			}
			assert.Empty(t, got.LastError)
			if tc.state == "wait call-back" && tc.step > 0 {
				assert.Equal(t, plan[tc.step].Step, got.DeployStep["step"], "the node waits in the step it was in")
			}
			if tc.step >= 0 { // the deploy log says who carried the deploy on and how
				assert.Contains(t, f.deployLogText(t, n.UUID), "conductor h1 ")
			}
		})
	}
}

// leftMidDeploy leaves deploying node uuid as a conductor that stopped in step index step of plan leaves it:
// reserved by holder, its steps planned and the current one recorded (step -1: no plan yet).
func (f *fixture) leftMidDeploy(t *testing.T, uuid, holder string, plan []steps.Step, step int) {
	ctx := context.Background()
	r, err := f.st.Reserve(ctx, uuid, holder)
	require.NoError(t, err)
	r.TargetProvisionState = "active"
	if step >= 0 {
		r.DriverInternalInfo["deploy_steps"] = steps.Maps(plan)
		r.DriverInternalInfo["deploy_step_index"] = step
		r.DriverInternalInfo["deploy_run"] = "run-1"
		setCurrent(r, steps.Deploy, plan[step].Map())
	}
	require.NoError(t, f.st.UpdateNode(ctx, r))
}

// deployLogText is the node's deploy log as one string.
func (f *fixture) deployLogText(t *testing.T, uuid string) string {
	lines, err := f.st.DeployLog(context.Background(), uuid, "")
	require.NoError(t, err)
	var out string
	for _, l := range lines {
		out += l.Message + "\n"
	}
	return out
}

// hangingDeploy is resumeDeploy whose boot_instance waits until its context ends, reporting how it ended.
type hangingDeploy struct {
	resumeDeploy
	started chan struct{}
	ended   chan error
}

func (d *hangingDeploy) ExecuteStep(ctx context.Context, t *driver.Task, k steps.Kind, s steps.Step) (driver.Outcome, error) {
	if s.Step != "boot_instance" {
		return d.resumeDeploy.ExecuteStep(ctx, t, k, s)
	}
	close(d.started)
	<-ctx.Done()
	d.ended <- ctx.Err()
	return driver.Done, ctx.Err()
}

// TestShutdownCancelsRecoveredWork: a node Recover carries on before Run started is work of this conductor like
// any other: a shutdown waits the grace for it, then cancels it and returns (it used to run under a context no
// shutdown cancelled, so a hung step held the shutdown forever).
func TestShutdownCancelsRecoveredWork(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{ShutdownGrace: 200 * time.Millisecond})
	d := &hangingDeploy{started: make(chan struct{}), ended: make(chan error, 1)}
	f.eng.reg.AddDeploy("fake", d)
	n := f.node(t, "deploying")
	f.leftMidDeploy(t, n.UUID, f.eng.Host(), d.Steps(steps.Deploy), 4) // in boot_instance

	require.NoError(t, f.eng.Recover(ctx))
	select {
	case <-d.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the recovered deploy's boot_instance did not run again")
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- f.eng.Run(runCtx) }()
	stop()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited for the recovered work past its grace")
	}
	assert.ErrorIs(t, <-d.ended, context.Canceled, "the hung step saw its context cancelled")
}
