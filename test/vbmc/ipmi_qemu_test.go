package vbmc

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQEMUIPMIPowerOn powers a real QEMU/OVMF VM (TCG) on over IPMI, then (after power down over IPMI) over
// Redfish, and reports for each the time until the BMC answered (QEMU started: the start waits for its QMP
// socket) and until the first firmware boot-manager line on the serial console. Both protocols run the same
// start, so the difference is the protocol's own cost (a lanplus session is set up beforehand).
func TestQEMUIPMIPowerOn(t *testing.T) {
	needQEMU(t)
	state := t.TempDir()
	url, addr, stop := startIPMIBMC(t, &QEMU{}, state)
	defer stop()
	c, err := ipmiDial(t, addr, "admin", "pw")
	require.NoError(t, err)
	serial := filepath.Join(state, "vm1", "serial.log")

	start := time.Now()
	ipmiControl(t, c, chassis.ChassisControlPowerUp)
	ipmiAck := time.Since(start)
	assert.True(t, ipmiPowerOn(t, c))
	assert.Equal(t, "On", powerState(t, url, "vm1"), "Redfish sees the VM IPMI started")
	ipmiFirmware := waitSerial(t, serial, "BdsDxe", start, 120*time.Second)

	ipmiControl(t, c, chassis.ChassisControlPowerDown)
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
	require.NoError(t, os.Remove(serial))

	start = time.Now()
	code, _ := resetVM(t, url, "vm1", "On")
	require.Equal(t, http.StatusNoContent, code)
	redfishAck := time.Since(start)
	assert.True(t, ipmiPowerOn(t, c), "IPMI sees the VM Redfish started")
	redfishFirmware := waitSerial(t, serial, "BdsDxe", start, 120*time.Second)
	ipmiControl(t, c, chassis.ChassisControlPowerDown)

	t.Logf("power on -> QEMU started (BMC answer): IPMI %s, Redfish %s; -> first firmware line: IPMI %s, Redfish %s",
		ipmiAck, redfishAck, ipmiFirmware, redfishFirmware)
}
