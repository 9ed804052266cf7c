package vbmc

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUSBStickMedia: the manager lists a USBStick medium beside the CD; insert downloads the image and the next
// start attaches it (xHCI + usb-storage), independently of the CD; an occupied stick refuses a second insert; eject
// empties it and the start after that has no stick.
func TestUSBStickMedia(t *testing.T) {
	runner := &fakeRunner{}
	url, _ := startBMC(t, runner, t.TempDir())
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("USB-BYTES")) }))
	defer img.Close()
	managers, err := c.Service.Managers()
	require.NoError(t, err)
	media, err := sortedMedia(managers[0])
	require.NoError(t, err)
	require.Len(t, media, 2)
	usb := media[1]
	assert.Equal(t, "Usb", usb.ID)
	assert.Equal(t, []schemas.VirtualMediaType{schemas.USBStickVirtualMediaType}, usb.MediaTypes)
	assert.False(t, *usb.Inserted)

	_, err = usb.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: img.URL + "/d.img"})
	require.NoError(t, err)
	_, err = usb.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: img.URL + "/e.img"})
	assert.ErrorContains(t, err, "already inserted")
	media, _ = sortedMedia(managers[0])
	assert.True(t, *media[1].Inserted)
	assert.Equal(t, img.URL+"/d.img", media[1].Image)
	assert.False(t, *media[0].Inserted, "the CD is untouched")

	systems, err := c.Service.Systems()
	require.NoError(t, err)
	_, err = systems[0].Reset(schemas.OnResetType)
	require.NoError(t, err)
	s := runner.last()
	assert.Empty(t, s.MediaFile)
	b, err := os.ReadFile(s.UsbFile)
	require.NoError(t, err)
	assert.Equal(t, "USB-BYTES", string(b))
	argv := (&QEMU{}).Argv(s, "vars.fd")
	assert.True(t, slices.ContainsFunc(argv, func(a string) bool { return strings.HasPrefix(a, "usb-storage,bus=xhci.0,drive=usb0") }), argv)

	_, err = media[1].EjectMedia()
	require.NoError(t, err)
	media, _ = sortedMedia(managers[0])
	assert.False(t, *media[1].Inserted)
	_, err = systems[0].Reset(schemas.ForceRestartResetType)
	require.NoError(t, err)
	assert.Empty(t, runner.last().UsbFile)
	assert.NotContains(t, strings.Join((&QEMU{}).Argv(runner.last(), "vars.fd"), " "), "usb-storage")
}

// sortedMedia lists a manager's virtual media by Id (Cd, then Usb): gofish fetches members in no fixed order.
func sortedMedia(m *schemas.Manager) ([]*schemas.VirtualMedia, error) {
	ms, err := m.VirtualMedia()
	slices.SortFunc(ms, func(a, b *schemas.VirtualMedia) int { return strings.Compare(a.ID, b.ID) })
	return ms, err
}
