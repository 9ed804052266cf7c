package rollout

// Maintenance windows gate the start of a wave (a wave under way finishes outside its window: stopping hosts
// half-way would leave the fleet mixed for longer). A window is "Mon-Fri 02:00-05:00" or "Sat 22:00-02:00"
// (ending past midnight), in UTC; no windows means always open.

import (
	"fmt"
	"strings"
	"time"
)

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Window is one parsed maintenance window: the days it starts on and its start and end in minutes after
// midnight UTC (end <= start: it ends the next day).
type Window struct {
	Days       [7]bool
	Start, End int
}

// ParseWindow reads "Mon-Fri 02:00-05:00", "Sun 01:00-03:00" or "Mon,Wed 00:00-06:00".
func ParseWindow(s string) (Window, error) {
	var w Window
	days, hours, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return w, fmt.Errorf("window %q: write it as DAYS HH:MM-HH:MM in UTC, e.g. \"Mon-Fri 02:00-05:00\": %w", s, ErrInvalid)
	}
	for _, part := range strings.Split(days, ",") {
		from, to, isRange := strings.Cut(strings.ToLower(part), "-")
		a, okA := dayNames[from]
		b, okB := dayNames[to]
		if !isRange {
			b, okB = a, okA
		}
		if !okA || !okB {
			return w, fmt.Errorf("window %q: days are Mon Tue Wed Thu Fri Sat Sun, as a range (Mon-Fri) or a list (Mon,Wed): %w", s, ErrInvalid)
		}
		for d := a; ; d = (d + 1) % 7 {
			w.Days[d] = true
			if d == b {
				break
			}
		}
	}
	var h1, m1, h2, m2 int
	if _, err := fmt.Sscanf(strings.TrimSpace(hours), "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil ||
		h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0 {
		return w, fmt.Errorf("window %q: hours are HH:MM-HH:MM in UTC, e.g. 02:00-05:00: %w", s, ErrInvalid)
	}
	w.Start, w.End = h1*60+m1, h2*60+m2
	return w, nil
}

// Open reports whether t falls in the window.
func (w Window) Open(t time.Time) bool {
	t = t.UTC()
	min := t.Hour()*60 + t.Minute()
	if w.End > w.Start {
		return w.Days[t.Weekday()] && min >= w.Start && min < w.End
	}
	// Past midnight: the part before midnight belongs to today, the part after to yesterday's start.
	return (w.Days[t.Weekday()] && min >= w.Start) || (w.Days[(t.Weekday()+6)%7] && min < w.End)
}

// ParseWindows parses every window.
func ParseWindows(specs []string) ([]Window, error) {
	out := make([]Window, 0, len(specs))
	for _, s := range specs {
		w, err := ParseWindow(s)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// InWindow reports whether t falls in one of the windows; no windows is always.
func InWindow(ws []Window, t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	for _, w := range ws {
		if w.Open(t) {
			return true
		}
	}
	return false
}
