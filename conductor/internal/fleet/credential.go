// Package fleet owns the conductor's side of day 2 for image-mode (bootc) hosts: the reporter credentials a
// deploy mints, the reading of host reports into the store's columns, and the images view's stale check (which
// digest a followed tag resolves to now, cached per reference). The wire contract with ferric-hostd is package
// bootchost.
package fleet

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// credentialBytes is the entropy of a reporter credential: 256 bits, beyond any guessing.
const credentialBytes = 32

// NewCredential mints a reporter credential (base64url, no padding) and the hash the store keeps. The
// credential itself must only ever reach the host (the config drive, a rotation's answer): never a log, an API
// answer or driver_internal_info.
func NewCredential() (credential, hash string, err error) {
	b := make([]byte, credentialBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("mint a reporter credential: %w", err)
	}
	credential = base64.RawURLEncoding.EncodeToString(b)
	return credential, HashCredential(credential), nil
}

// HashCredential is the hex SHA-256 the store keeps of a credential. A plain hash suffices: the credential has
// 256 random bits, so there is nothing to brute-force, unlike a password.
func HashCredential(credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return hex.EncodeToString(sum[:])
}

// SameHash compares two hashes in constant time ("" never matches), so a timing probe learns nothing of a
// stored hash.
func SameHash(stored, presented string) bool {
	if stored == "" || presented == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(presented)) == 1
}
