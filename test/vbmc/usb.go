package vbmc

// The VM's USB stick virtual media (MediaTypes USBStick), beside the CD of redfish.go: Ironic attaches its "disk"
// device type here (its redfish management maps disk -> USBStick). Like the CD, an inserted image is downloaded
// into the VM's directory (usb.img) and attached when QEMU next starts the VM (an xHCI controller and a removable
// usb-storage device), as a BMC's media shows at the next boot.

import (
	"encoding/json"
	"net/http"
)

// usbResource is the Redfish VirtualMedia resource of the USB stick.
func (b *BMC) usbResource(m *vm) map[string]any {
	id := "/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia/Usb"
	via := "NotConnected"
	var image any
	if m.state.UsbPresent {
		via, image = "URI", m.state.UsbImage
	}
	return map[string]any{"@odata.id": id, "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia", "Id": "Usb",
		"Name": "Virtual USB stick", "MediaTypes": []string{"USBStick"}, "Image": image, "Inserted": m.state.UsbPresent,
		"WriteProtected": true, "ConnectedVia": via,
		"Actions": map[string]any{"#VirtualMedia.InsertMedia": map[string]string{"target": id + "/Actions/VirtualMedia.InsertMedia"},
			"#VirtualMedia.EjectMedia": map[string]string{"target": id + "/Actions/VirtualMedia.EjectMedia"}}}
}

func (b *BMC) getUsb(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, b.usbResource(m))
}

// insertUsbAction runs the USB stick's VirtualMedia.InsertMedia.
func (b *BMC) insertUsbAction(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	var body struct{ Image string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, 400, "malformed JSON: "+err.Error())
		return
	}
	if code, msg := b.insertUsb(r, m, body.Image); code != 0 {
		redfishError(w, code, msg)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ejectUsb runs the USB stick's VirtualMedia.EjectMedia. The downloaded file stays until the next insert
// replaces it; the next start no longer attaches it.
func (b *BMC) ejectUsb(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	m.state.UsbPresent, m.state.UsbImage = false, ""
	b.save(m)
	w.WriteHeader(http.StatusNoContent)
}

// insertUsb is insertMedia for the USB stick: one download per VM at a time (the CD's slot), without the lock
// while it runs; an occupied stick is refused as a real BMC does. Called with m.mu held; returns with it held.
func (b *BMC) insertUsb(r *http.Request, m *vm, image string) (int, string) {
	if m.state.UsbPresent {
		return http.StatusConflict, "a medium is already inserted; eject it first"
	}
	if m.downloading {
		return http.StatusConflict, "an InsertMedia operation is in progress for " + m.cfg.Name + "; retry when it has finished"
	}
	m.downloading = true
	b.downloads.Add(1)
	m.mu.Unlock()
	file, err := b.downloadTo(r.Context(), m, image, "usb.img")
	b.downloads.Done()
	m.mu.Lock()
	m.downloading = false
	if err != nil {
		b.log.WithError(err).WithField("vm", m.cfg.Name).Warn("InsertMedia (USB) failed")
		return http.StatusBadRequest, err.Error()
	}
	m.state.UsbImage, m.state.UsbFile, m.state.UsbPresent = image, file, true
	b.save(m)
	return 0, ""
}
