package access

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shequ/shequ/hub/atomicfile"
	"github.com/shequ/shequ/protocol"
)

// Files written by WriteMosquitto under its directory.
const (
	PasswdFile = "passwd"
	ACLFile    = "acl"
)

// MosquittoPasswd returns a mosquitto password file for the accounts.
func MosquittoPasswd(accounts []Account) ([]byte, error) {
	var b bytes.Buffer
	for _, a := range sorted(accounts) {
		if err := checkName(a.Username); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(a.Mosquitto, "$7$") || strings.ContainsAny(a.Mosquitto, ":\n") {
			return nil, fmt.Errorf("access: account %s has no mosquitto password hash", a.Username)
		}
		fmt.Fprintf(&b, "%s:%s\n", a.Username, a.Mosquitto)
	}
	return b.Bytes(), nil
}

// MosquittoACL returns a mosquitto ACL file with the package's rules. The
// per-device rules are patterns on %u; mosquitto must run with
// use_username_as_clientid true so a device's client id is its username.
func MosquittoACL(accounts []Account) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by the Shequ hub after every enrolment and revocation; do not edit.\n")
	b.WriteString("# Devices: publish to their own uplink topics, read their own and their groups' downlink.\n")
	for _, c := range UpChannels {
		fmt.Fprintf(&b, "pattern write %s\n", protocol.UpTopic("%u", c))
	}
	fmt.Fprintf(&b, "pattern read %s\n", protocol.DownTopic("%u", "+"))
	for _, a := range sorted(accounts) {
		if err := checkName(a.Username); err != nil {
			return nil, err
		}
		b.WriteString("\nuser " + a.Username + "\n")
		if a.Hub() {
			b.WriteString("topic readwrite #\n")
			b.WriteString("topic readwrite $share/#\n")
			continue
		}
		for _, g := range a.Groups {
			if err := checkName(g); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "topic read %s\n", protocol.DownTopic(g, "+"))
		}
	}
	return b.Bytes(), nil
}

// checkName refuses a name that could break out of a line of the files or
// act as a wildcard.
func checkName(s string) error {
	if s == HubUser {
		return nil
	}
	if err := protocol.ValidID(s); err != nil {
		return fmt.Errorf("access: account name %q: %w", s, err)
	}
	return nil
}

func sorted(accounts []Account) []Account {
	out := slices.Clone(accounts)
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.Username, b.Username) })
	return out
}

// WriteMosquitto writes the password and ACL files under dir (created 0750),
// each atomically, mode 0640 (they hold password hashes: give the directory's
// group to the mosquitto user and no one else). It writes the ACL file
// first, so that a broker reading both never finds an account without its
// rules.
func WriteMosquitto(dir string, accounts []Account) error {
	passwd, err := MosquittoPasswd(accounts)
	if err != nil {
		return err
	}
	acl, err := MosquittoACL(accounts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("access: create %s: %w", dir, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ACLFile), acl, 0o640); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, PasswdFile), passwd, 0o640); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	return nil
}
