package engine

import (
	"context"
	"fmt"

	"github.com/GehirnInc/crypt/sha512_crypt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// hashRescuePassword returns the SHA-512 crypt(3) hash ("$6$<16 random salt characters>$...", 5000 rounds) of a
// rescue password: what /etc/shadow holds and what Ironic sends the agent with
// rescue_password_hash_algorithm=sha512. The clear password lives only in this call.
func hashRescuePassword(pw string) (string, error) {
	h, err := sha512_crypt.New().Generate([]byte(pw), nil) // nil salt: a random one from crypto/rand
	if err != nil {
		return "", fmt.Errorf("hash the rescue password: %w", err)
	}
	return h, nil
}

// recordRescuePassword keeps only the hash of the rescue verb's password on the node (never the clear text, in
// instance_info or anywhere else) and forgets any previous agent, as Ironic's do_node_rescue does.
func recordRescuePassword(n *store.Node, pw string) error {
	h, err := hashRescuePassword(pw)
	if err != nil {
		return err
	}
	driver.RemoveRescuePassword(n)
	n.InstanceInfo[driver.KeyHashedRescuePassword] = h
	forgetAgent(n)
	return nil
}

// validateRescue is the rescue verb's check: an interface whose validation needs the node's other interfaces
// (agent rescue checks that the boot interface can boot the agent) gets the task.
func validateRescue(ctx context.Context, t *driver.Task) error {
	if tv, ok := t.Rescue.(interface {
		ValidateTask(context.Context, *driver.Task) error
	}); ok {
		return tv.ValidateTask(ctx, t)
	}
	return t.Rescue.Validate(ctx, t.Node)
}

// rescue boots an active node into its rescue environment through its rescue interface: fake finishes at once,
// agent boots the agent ramdisk and waits ("rescue wait") for its call-back. A failure removes the password hash
// and lands in "rescue failed" (failTask tears the agent boot down).
func (e *Engine) rescue(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	out, err := t.Rescue.Rescue(ctx, t)
	e.refreshPower(ctx, t)
	if err != nil {
		driver.RemoveRescuePassword(n)
		e.failTask(ctx, t, fmt.Errorf("Failed to rescue: %v", err))
		return false
	}
	if out == driver.Wait {
		e.must(e.transition(n, fsm.EvWait, ""))
		return false
	}
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}

// unrescue boots a rescued node back into its instance; the rescue password hash is removed whatever the
// outcome. A failure lands in "unrescue failed".
func (e *Engine) unrescue(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	_, err := t.Rescue.Unrescue(ctx, t)
	driver.RemoveRescuePassword(n)
	e.refreshPower(ctx, t)
	if err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to unrescue: %v", err))
		return false
	}
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}

// adopt takes over a node that already runs its instance, as Ironic's _do_adoption: the boot and deploy interfaces
// must accept the node's data (for bootc: instance_info.image_source, options, platform), and the boot interface
// prepares the instance boot; neither the disk nor the power is touched. A refusal lands in "adopt failed" with
// the reason in last_error and the power state forgotten (Ironic's NOSTATE: it is likely not known).
func (e *Engine) adopt(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	err := t.Boot.Validate(ctx, n)
	if err != nil {
		err = fmt.Errorf("boot interface %q: %v", n.Interfaces["boot"], err)
	} else if err = e.detectDeploy(ctx, t, "adopt"); err != nil { // autodetect resolves before the take-over (Ironic)
		err = fmt.Errorf("deploy interface %q: %v", autodetect.Name, err)
	} else if err = t.Deploy.Validate(ctx, n); err != nil {
		err = fmt.Errorf("deploy interface %q: %v", n.Interfaces["deploy"], err)
	} else if err = t.Boot.PrepareInstance(ctx, t); err != nil {
		err = fmt.Errorf("prepare the instance boot: %v", err)
	}
	if err != nil {
		n.PowerState = ""
		e.failTask(ctx, t, fmt.Errorf("Error while attempting to adopt node %s: %v.", n.UUID, err))
		return false
	}
	t.Logf(ctx, "adopted node %s", n.UUID)
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}
