package agentdeploy

// Starting an agent command at most once across conductor deaths (issue 17). A conductor sends a command, then
// saves its id in the node; one that dies (or is thought dead and loses its reservation) between the two leaves
// the agent running a command the node does not name. The conductor that takes the node over must follow that
// command, not send a second one: a second bootc install, after the first finished, writes the disk again.

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/deploy"
)

// KeySending is the write-ahead record of a command being sent whose id is not saved yet, in
// driver_internal_info: {"tag", "command", "agent_url", "before"}; before is how many commands of that name the
// agent's history held just before the send.
const KeySending = "agent_command_sending"

// StartOnce starts command name for the work tag names (a step, "install") on the agent at most once, and
// returns the command's id for the caller to save. adopted is true when the id is that of a command a
// predecessor sent without saving it.
//
// Before sending, it saves how many commands of that name the agent has run (the agent's history is oldest
// first and one command runs at a time). A later call that finds that record for the same work and the same agent
// boot, and more such commands in the history than recorded, adopts the first one after the count: the
// predecessor's, running or already finished. Fewer or as many: the send never reached the agent, or the agent
// booted again and lost it; the command is sent (again). With no record, a command of that name still running is
// adopted too (a predecessor that predates the record sent it).
//
// Errors are the agent's (agentclient.ErrBusy, ErrIdentity, ...) or the node's save; the record is dropped once
// the agent answered the send, whatever the answer.
func StartOnce(ctx context.Context, t *driver.Task, c *agentclient.Client, tag, name string,
	params func() (any, error)) (id string, adopted bool, err error) {
	cmds, err := c.Commands(ctx)
	if err != nil {
		return "", false, err
	}
	dii := t.Node.DriverInternalInfo
	agentURL, _ := dii["agent_url"].(string)
	sent := sameCommands(cmds, name)
	if rec, ok := dii[KeySending].(map[string]any); ok {
		delete(dii, KeySending)
		before, isInt := driver.IntValue(rec["before"])
		if isInt && rec["tag"] == tag && rec["command"] == name && rec["agent_url"] == agentURL &&
			before >= 0 && before < len(sent) {
			return sent[before].ID, true, nil
		}
	} else if k := len(cmds) - 1; k >= 0 && sameCommand(cmds[k].CommandName, name) &&
		cmds[k].CommandStatus == deploy.StatusRunning {
		return cmds[k].ID, true, nil
	}
	p, err := params()
	if err != nil {
		return "", false, err
	}
	dii[KeySending] = map[string]any{"tag": tag, "command": name, "agent_url": agentURL, "before": len(sent)}
	if err := t.Save(ctx); err != nil {
		delete(dii, KeySending)
		return "", false, fmt.Errorf("record the %s command before sending it to the agent: %w", name, err)
	}
	r, err := c.Execute(ctx, name, p, false)
	if err != nil && ctx.Err() != nil {
		// The conductor is stopping: the record stays saved for whoever drives the node next.
		return "", false, err
	}
	delete(dii, KeySending)
	if err != nil {
		return "", false, err
	}
	return r.ID, false, nil
}

// sameCommand reports whether an agent's command_name is name: IPA answers with or without the extension prefix
// ("execute_bootc_install" for "standby.execute_bootc_install").
func sameCommand(got, name string) bool {
	return got == name || strings.HasSuffix(name, "."+got)
}

// sameCommands returns the history's commands named name, oldest first.
func sameCommands(cmds []agentclient.Result, name string) []agentclient.Result {
	var out []agentclient.Result
	for _, r := range cmds {
		if sameCommand(r.CommandName, name) {
			out = append(out, r)
		}
	}
	return out
}
