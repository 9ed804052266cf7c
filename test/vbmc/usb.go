package vbmc

// The VM's USB stick virtual media (MediaTypes USBStick), beside the CD of redfish.go: Ironic attaches its "disk"
// device type here (its redfish management maps disk -> USBStick). Like the CD, an inserted image is downloaded
// into the VM's directory (usb.img) and attached when QEMU next starts the VM (an xHCI controller and a removable
// usb-storage device), as a BMC's media shows at the next boot.

import (
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
