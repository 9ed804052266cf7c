package vbmc

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
)

// resolvePassword reads password_file into Password. The password never comes from argv (visible in ps): the
// YAML file, password_file or cmd/vbmc's FERRIC_VBMC_PASSWORD.
func (c *Config) resolvePassword(log *logrus.Entry) error {
	if c.PasswordFile == "" {
		return nil
	}
	if c.Password != "" {
		return fmt.Errorf("vbmc: both password and password_file are set: keep only password_file")
	}
	st, err := os.Stat(c.PasswordFile)
	if err != nil {
		return fmt.Errorf("vbmc: password_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.WithField("password_file", c.PasswordFile).Warnf("password_file is readable by other users (mode %o): chmod 600 it", st.Mode().Perm())
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return fmt.Errorf("vbmc: password_file: %w", err)
	}
	c.Password = strings.TrimRight(string(b), "\r\n")
	if c.Password == "" {
		return fmt.Errorf("vbmc: password_file %s is empty: write the password into it", c.PasswordFile)
	}
	return nil
}

// checkAuth refuses a BMC without auth on a non-loopback address (anyone on the network could power VMs and
// make the BMC download URLs), and a username without a password.
func checkAuth(username, password, addr string) error {
	if username != "" {
		if password == "" {
			return fmt.Errorf("vbmc: username %q has no password: set password_file or FERRIC_VBMC_PASSWORD", username)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("vbmc: listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("vbmc: no username (HTTP Basic auth off) on non-loopback address %s: set username and password_file, or listen on 127.0.0.1", addr)
}
