package agentdeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
)

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// progressAgent is an agent on 127.0.0.1 answering every progress request with p.
func progressAgent(t *testing.T, p deploy.Progress) *agentclient.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name != deploy.CmdProgress {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		body, _ := json.Marshal(p)
		_ = json.NewEncoder(w).Encode(deploy.CommandResult{ID: "p1", CommandName: req.Name,
			CommandStatus: deploy.StatusSucceeded, CommandResult: body})
	}))
	t.Cleanup(srv.Close)
	c, err := agentclient.New(agentclient.Config{URL: srv.URL, Token: "tok"})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func repeat(n int, line string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%d %s", i, line)
	}
	return out
}

// TestCopyProgressCapsAgentLines: one poll copies at most 1,000 lines and 256 KiB, each line at most 4 KiB, and
// the offset still moves past everything the agent sent.
func TestCopyProgressCapsAgentLines(t *testing.T) {
	long := strings.Repeat("é", 5000) // 10,000 bytes of two-byte runes
	tests := []struct {
		name      string
		lines     []string
		wantLines int  // lines copied, the note included
		wantNote  bool // a last line says lines were dropped
	}{
		{"a few lines pass untouched", repeat(3, "pulling"), 3, false},
		{"exactly the line cap", repeat(1000, "x"), 1000, false},
		{"more lines than the cap", repeat(5000, "x"), 1000, true},
		{"more bytes than the cap", repeat(100, strings.Repeat("b", 4000)), 65 + 1, true}, // 65 lines of ~4 KB, the note
		{"an overlong line is cut", []string{long}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := progressAgent(t, deploy.Progress{Phase: "pulling " + strings.Repeat("p", 1000), Lines: tc.lines, LineOffset: 7 + len(tc.lines)})
			n := &store.Node{UUID: "n1", DriverInternalInfo: map[string]any{KeyOffset: 7}}
			var got []string
			task := &driver.Task{Node: n, Log: quietLog(), DeployLog: func(_ context.Context, source string, lines ...string) {
				assert.Equal(t, "agent", source)
				got = append(got, lines...)
			}}
			require.NoError(t, New(0, false, nil).CopyProgress(context.Background(), task, c))

			require.Equal(t, tc.wantLines, len(got))
			total := 0
			for _, l := range got {
				assert.LessOrEqual(t, len(l), maxLineBytes)
				assert.True(t, utf8.ValidString(l), "lines are cut on a rune boundary")
				total += len(l)
			}
			assert.LessOrEqual(t, total, maxPollBytes+256, "256 KiB of agent lines and the note")
			if tc.wantNote {
				assert.Contains(t, got[len(got)-1], "agent log lines dropped")
			} else {
				assert.NotContains(t, got[len(got)-1], "dropped")
			}
			assert.Equal(t, got[0], truncateLine(tc.lines[0], maxLineBytes), "kept lines come first, in order")
			assert.Equal(t, 7+len(tc.lines), n.DriverInternalInfo[KeyOffset], "the offset moves past dropped lines")
			phase, _ := n.DriverInternalInfo[KeyProgress].(map[string]any)["phase"].(string)
			assert.LessOrEqual(t, len(phase), maxPhaseBytes)
		})
	}
	assert.Contains(t, truncateLine(long, maxLineBytes), "[truncated]")
}
