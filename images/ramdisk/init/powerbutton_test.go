package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// event encodes one struct input_event as the kernel writes it on 64-bit Linux.
func event(typ, code uint16, value int32) []byte {
	var b bytes.Buffer
	b.Write(make([]byte, 16)) // struct timeval
	binary.Write(&b, binary.LittleEndian, typ)
	binary.Write(&b, binary.LittleEndian, code)
	binary.Write(&b, binary.LittleEndian, value)
	return b.Bytes()
}

// TestWaitPowerPress: only a press of KEY_POWER counts; other keys, releases and sync events do not, and a
// stream that ends first is an error.
func TestWaitPowerPress(t *testing.T) {
	var stream []byte
	stream = append(stream, event(0, 0, 0)...)            // EV_SYN
	stream = append(stream, event(evKey, 30, 1)...)       // KEY_A pressed
	stream = append(stream, event(evKey, keyPower, 0)...) // power released
	require.Error(t, waitPowerPress(bytes.NewReader(stream)), "no press: the stream ends first")
	stream = append(stream, event(evKey, keyPower, 1)...)
	require.NoError(t, waitPowerPress(bytes.NewReader(stream)))
}

// TestPowerButtonDevices finds the event node of the device named "Power Button" in a fake sysfs.
func TestPowerButtonDevices(t *testing.T) {
	root := t.TempDir()
	for ev, name := range map[string]string{"event0": "Power Button\n", "event1": "AT Translated Set 2 keyboard\n", "event2": "Sleep Button\n"} {
		dir := filepath.Join(root, "sys/class/input", ev, "device")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "name"), []byte(name), 0o644))
	}
	assert.Equal(t, []string{filepath.Join(root, "dev/input/event0")}, powerButtonDevices(root))
	assert.Error(t, watchPowerButton(t.TempDir(), func() {}), "a machine without the device is reported")
}
