package autodetect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// detector answers what it is told and remembers whether its context had a deadline.
type detector struct {
	driver.FakeDeploy
	det         driver.Detection
	err         error
	hadDeadline bool
	asked       int
}

func (d *detector) SupportsDeploy(ctx context.Context, _ *driver.Task) (driver.Detection, error) {
	_, d.hadDeadline = ctx.Deadline()
	d.asked++
	return d.det, d.err
}

func TestNewRefuses(t *testing.T) {
	log := logrus.NewEntry(logrus.New())
	for _, tc := range []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"empty", nil, "at least one"},
		{"itself", []Candidate{{Name: Name, Deploy: driver.FakeDeploy{}}}, `cannot choose "autodetect"`},
		{"no implementation", []Candidate{{Name: "bootc"}}, `cannot choose "bootc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cands, 0, log)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestChoose(t *testing.T) {
	cause := errors.New("registry down")
	yes := func() *detector { return &detector{det: driver.Detection{Supported: true, Reason: "mine"}} }
	no := func() *detector { return &detector{det: driver.Detection{Reason: "not mine\nat all"}} }
	for _, tc := range []struct {
		name         string
		cands        func() []Candidate
		want         string
		fallback     bool
		wantErr      bool
		reasonSubstr string
	}{
		{"first that says yes", func() []Candidate { return []Candidate{{"a", no()}, {"b", yes()}, {"c", yes()}} }, "b", false, false, "mine"},
		{"nobody: the last", func() []Candidate { return []Candidate{{"a", no()}, {"b", no()}} }, "b", true, false,
			"no interface of --autodetect-deploy-interfaces (a,b) claims this image (a: not mine at all; b: not mine at all); using the last one, b"},
		{"non-detector only as fallback", func() []Candidate { return []Candidate{{"p", driver.FakeDeploy{}}, {"a", no()}} }, "a", true, false, "p: cannot detect"},
		{"cannot tell", func() []Candidate { return []Candidate{{"a", &detector{err: cause}}, {"b", yes()}} }, "", false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cands := tc.cands()
			a, err := New(cands, time.Minute, logrus.NewEntry(logrus.New()))
			require.NoError(t, err)
			c, err := a.Choose(context.Background(), &driver.Task{Node: &store.Node{}})
			if tc.wantErr {
				var de *DetectError
				require.ErrorAs(t, err, &de)
				assert.Equal(t, "a", de.Interface)
				assert.ErrorIs(t, err, driver.ErrInvalid, "the API answers 400")
				assert.ErrorIs(t, err, cause)
				assert.Zero(t, cands[1].Deploy.(*detector).asked, "no candidate is asked after one that cannot tell")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Name)
			assert.Equal(t, tc.fallback, c.Fallback)
			assert.Contains(t, c.Detection.Reason, tc.reasonSubstr)
			for _, x := range cands {
				if d, ok := x.Deploy.(*detector); ok && d.asked > 0 {
					assert.True(t, d.hadDeadline, "every detection is bounded")
				}
			}
		})
	}
}

func TestOwnVerbs(t *testing.T) {
	a, err := New([]Candidate{{Name: "x", Deploy: driver.FakeDeploy{}}}, 0, logrus.NewEntry(logrus.New()))
	require.NoError(t, err)
	_, err = a.Deploy(context.Background(), nil)
	assert.ErrorIs(t, err, errNotSwitched)
	_, err = a.Clean(context.Background(), nil)
	assert.ErrorIs(t, err, errNotSwitched)
	assert.NoError(t, a.TearDown(context.Background(), nil))
	assert.Equal(t, "x", a.Fallback().Name)
	assert.NoError(t, a.Validate(context.Background(), &store.Node{UUID: "u"}), "the fallback (FakeDeploy) accepts")
}
