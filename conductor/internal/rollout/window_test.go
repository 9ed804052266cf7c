package rollout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWindows(t *testing.T) {
	// 2026-12-07 is a Monday.
	at := func(day int, hm string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", "2026-12-0"+string(rune('0'+day))+" "+hm)
		require.NoError(t, err)
		return tm
	}
	tests := map[string]struct {
		spec string
		t    time.Time
		open bool
	}{
		"weekday inside":         {"Mon-Fri 02:00-05:00", at(7, "03:00"), true},
		"weekday end excluded":   {"Mon-Fri 02:00-05:00", at(7, "05:00"), false},
		"weekend outside":        {"Mon-Fri 02:00-05:00", at(6, "03:00"), false},
		"past midnight, evening": {"Sat 22:00-02:00", at(5, "23:00"), true},
		"past midnight, morning": {"Sat 22:00-02:00", at(6, "01:00"), true},
		"past midnight, wrong":   {"Sat 22:00-02:00", at(7, "01:00"), false},
		"list":                   {"Mon,Wed 00:00-06:00", at(9, "01:00"), true},
		"wrapping range":         {"Fri-Mon 10:00-11:00", at(6, "10:30"), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := ParseWindow(tc.spec)
			require.NoError(t, err)
			assert.Equal(t, tc.open, w.Open(tc.t))
		})
	}
	assert.True(t, InWindow(nil, at(7, "12:00")), "no windows: always open")
	for _, bad := range []string{"", "Mon", "Funday 01:00-02:00", "Mon 25:00-26:00", "Mon 1-2"} {
		_, err := ParseWindow(bad)
		require.ErrorIs(t, err, ErrInvalid, bad)
	}
}
