package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The ACPI power button: a BMC's graceful power off (Redfish GracefulShutdown, IPMI soft off) presses it. A
// ramdisk that ignores it makes every such request wait out the BMC driver's timeout before the forced off (15 s
// with Ferric's Redfish driver, minutes with some BMCs), so /init watches the button's input device and powers
// off in order when it is pressed.

// Input event constants of linux/input-event-codes.h.
const (
	evKey    = 0x01
	keyPower = 116
)

// inputEventSize is sizeof(struct input_event) on 64-bit Linux: a struct timeval (16 bytes), type (u16), code
// (u16) and value (s32). The ramdisk is built for amd64 and arm64 only, both 64-bit.
const inputEventSize = 24

// powerButtonDevices returns the /dev/input/event* nodes whose input device calls itself a power button (the
// ACPI button driver names it "Power Button"), under root (tests point it at a fake tree).
func powerButtonDevices(root string) []string {
	names, _ := filepath.Glob(filepath.Join(root, "sys/class/input/event*/device/name"))
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || !strings.EqualFold(strings.TrimSpace(string(b)), "Power Button") {
			continue
		}
		ev := filepath.Base(filepath.Dir(filepath.Dir(n)))
		out = append(out, filepath.Join(root, "dev/input", ev))
	}
	return out
}

// waitPowerPress reads input events from r until the power key is pressed (a key-down or auto-repeat event of
// KEY_POWER); it returns an error when r ends first.
func waitPowerPress(r io.Reader) error {
	buf := make([]byte, inputEventSize)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		typ := binary.LittleEndian.Uint16(buf[16:18])
		code := binary.LittleEndian.Uint16(buf[18:20])
		var value int32
		if err := binary.Read(bytes.NewReader(buf[20:24]), binary.LittleEndian, &value); err != nil {
			return err
		}
		if typ == evKey && code == keyPower && value != 0 {
			return nil
		}
	}
}

// watchPowerButton calls pressed once the power button of any button device is pressed; it returns at once (the
// watchers run in the background) and reports when the machine has no such device.
func watchPowerButton(root string, pressed func()) error {
	devs := powerButtonDevices(root)
	if len(devs) == 0 {
		return errors.New("no power button input device (modules button and evdev not loaded?)")
	}
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			say("power button %s: %v", d, err)
			continue
		}
		go func() {
			defer f.Close()
			if err := waitPowerPress(f); err == nil {
				pressed()
			}
		}()
	}
	return nil
}
