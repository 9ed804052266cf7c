package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
)

func img(ref, digest string) bootchost.ImageStatus {
	return bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: digest}
}

// digests lists (staged, booted, rollback) digests, "" for none.
func digests(s *State) [3]string {
	var out [3]string
	for i, e := range []*bootchost.BootEntry{s.Host.Status.Staged, s.Host.Status.Booted, s.Host.Status.Rollback} {
		if e != nil && e.Image != nil {
			out[i] = e.Image.ImageDigest
		}
	}
	return out
}

// TestTransitions drives the state through bootc's commands and reboots, one table row per sequence.
func TestTransitions(t *testing.T) {
	type step struct {
		do      string // upgrade:DIGEST, check:DIGEST, switch:REF:DIGEST, rollback, boot:ID
		wantMsg string
		wantErr string
		want    [3]string // staged, booted, rollback after the step
		queued  bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"upgrade stages, reboot boots it, old booted is rollback", []step{
			{do: "boot:b1", want: [3]string{"", "a", ""}},
			{do: "upgrade:b", wantMsg: "Queued for next boot: r:1", want: [3]string{"b", "a", ""}},
			{do: "upgrade:b", wantMsg: "Staged update present, not changed.", want: [3]string{"b", "a", ""}},
			{do: "boot:b1", want: [3]string{"b", "a", ""}},
			{do: "boot:b2", want: [3]string{"", "b", "a"}},
			{do: "upgrade:b", wantMsg: "No update available.", want: [3]string{"", "b", "a"}},
		}},
		{"check reports without staging", []step{
			{do: "check:a", wantMsg: "No changes in: r:1", want: [3]string{"", "a", ""}},
			{do: "check:c", wantMsg: "Update available for: r:1\n  Digest: c", want: [3]string{"", "a", ""}},
		}},
		{"rollback needs a rollback deployment", []step{
			{do: "rollback", wantErr: "No rollback available", want: [3]string{"", "a", ""}},
		}},
		{"rollback queues, a second one reverts, a reboot swaps", []step{
			{do: "upgrade:b", want: [3]string{"b", "a", ""}},
			{do: "boot:b2", want: [3]string{"", "b", "a"}},
			{do: "rollback", wantMsg: "Next boot: rollback deployment", want: [3]string{"", "b", "a"}, queued: true},
			{do: "rollback", wantMsg: "Reverting queued rollback state", want: [3]string{"", "b", "a"}},
			{do: "rollback", want: [3]string{"", "b", "a"}, queued: true},
			{do: "boot:b3", want: [3]string{"", "a", "b"}},
		}},
		{"rollback drops a staged deployment", []step{
			{do: "upgrade:b", want: [3]string{"b", "a", ""}},
			{do: "boot:b2", want: [3]string{"", "b", "a"}},
			{do: "upgrade:c", want: [3]string{"c", "b", "a"}},
			{do: "rollback", want: [3]string{"", "b", "a"}, queued: true},
		}},
		{"switch stages even the booted digest; same spec is a no-op", []step{
			{do: "switch:r:1:x", wantMsg: "Image specification is unchanged.", want: [3]string{"", "a", ""}},
			{do: "switch:s:1:a", wantMsg: "Queued for next boot: s:1", want: [3]string{"a", "a", ""}},
			{do: "boot:b2", want: [3]string{"", "a", "a"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState(bootchost.ImageReference{Image: "r:1", Transport: "registry"}, img("r:1", "a"))
			for i, st := range tc.steps {
				msg, err := apply(&s, st.do)
				if st.wantErr != "" {
					require.ErrorContains(t, err, st.wantErr, "step %d", i)
				} else {
					require.NoError(t, err, "step %d", i)
					assert.Contains(t, msg, st.wantMsg, "step %d", i)
				}
				assert.Equal(t, st.want, digests(&s), "step %d (%s)", i, st.do)
				assert.Equal(t, st.queued, s.Host.Status.RollbackQueued, "step %d", i)
				wantOrder := map[bool]string{true: "rollback", false: "default"}[st.queued]
				assert.Equal(t, wantOrder, s.Host.Spec.BootOrder, "step %d", i)
			}
		})
	}
}

// apply runs one step of TestTransitions.
func apply(s *State, do string) (string, error) {
	parts := strings.SplitN(do, ":", 4)
	switch parts[0] {
	case "boot":
		s.Finalize(parts[1])
		return "", nil
	case "upgrade":
		msg, _, err := s.Upgrade(img(s.Host.Spec.Image.Image, parts[1]))
		return msg, err
	case "check":
		return s.Check(img(s.Host.Spec.Image.Image, parts[1]))
	case "rollback":
		return s.Rollback()
	case "switch":
		ref := bootchost.ImageReference{Image: parts[1] + ":" + parts[2], Transport: "registry"}
		unchanged, err := s.SwitchSpec(ref)
		if err != nil || unchanged {
			return "Image specification is unchanged.", err
		}
		return s.StageSwitched(img(ref.Image, parts[3])), nil
	}
	panic("unknown step " + do)
}

func TestFinalizeCases(t *testing.T) {
	s := NewState(bootchost.ImageReference{Image: "r:1", Transport: "registry"}, img("r:1", "a"))
	assert.False(t, s.Finalize(""), "no boot id: nothing to do")
	assert.True(t, s.Finalize("b1"), "first boot after the install records its id")
	assert.False(t, s.Finalize("b1"), "same boot")
	_, err := s.Check(img("r:1", "c"))
	require.NoError(t, err)
	require.NotNil(t, s.Host.Status.Booted.CachedUpdate)
	s.Finalize("b2")
	assert.Nil(t, s.Host.Status.Booted.CachedUpdate, "a new boot has not checked for updates")

	var none State
	_, _, err = none.Upgrade(img("r:1", "a"))
	require.ErrorIs(t, err, errNotBooted)
	s.Host.Status.Booted.Incompatible = true
	_, _, err = s.Upgrade(img("r:1", "z"))
	require.ErrorContains(t, err, "local rpm-ostree modifications")
	assert.Nil(t, s.Host.Status.Staged, "an incompatible deployment is not upgraded")
	_, err = none.Rollback()
	require.ErrorIs(t, err, errNotBooted)
}

func TestInstalledState(t *testing.T) {
	for _, tc := range []struct {
		name, env, source, target, wantRef, wantDigest string
	}{
		{"pulled by digest, target tag", "engine=\"podman-5\"\nimage=\"r/x@sha256:11\"\nimageid=\"22\"\n", "", "r/x:v1", "r/x:v1", "sha256:11"},
		{"source imgref digest", "image=\"r/x:v1\"\nimageid=\"22\"\n", "docker://r/x@sha256:33", "", "r/x:v1", "sha256:33"},
		{"image id fallback", "image=\"r/x:v1\"\nimageid=\"22\"\n", "", "", "r/x:v1", "sha256:22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := installedState(tc.env, tc.source, tc.target)
			require.NotNil(t, s.Host.Status.Booted)
			assert.Equal(t, tc.wantRef, s.Host.Spec.Image.Image)
			ref, d := s.Host.BootedImage()
			assert.Equal(t, tc.wantRef, ref)
			assert.Equal(t, tc.wantDigest, d)
			assert.Empty(t, s.BootID)
		})
	}
}
