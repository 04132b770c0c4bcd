package pki

import (
	"crypto/tls"
	"net"
	"os"
	"testing"
	"time"
)

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	first, err := Ensure(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.CreatedCA() || !first.Renewed() {
		t.Fatalf("first Ensure: createdCA=%v renewed=%v, want both", first.CreatedCA(), first.Renewed())
	}
	for name, want := range map[string]os.FileMode{CAKeyFile: 0o600, ServerKeyFile: 0o600, CAFile: 0o644, ServerFile: 0o644} {
		st, err := os.Stat(first.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	if len(first.Pin()) != 64 {
		t.Errorf("Pin() = %q, want 64 hex digits", first.Pin())
	}

	tests := []struct {
		name        string
		hostnames   []string
		now         time.Time
		wantRenewed bool
	}{
		{"same day reuses", nil, now, false},
		{"a month later reuses", nil, now.AddDate(0, 1, 0), false},
		{"new hostname reissues", []string{"hub.example.cn"}, now, true},
		{"near expiry renews", []string{"hub.example.cn"}, now.AddDate(1, 0, 10), true},
		{"renewed is reused", []string{"hub.example.cn"}, now.AddDate(1, 0, 11), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Ensure(dir, tc.hostnames, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if p.CreatedCA() || p.Pin() != first.Pin() {
				t.Fatalf("CA changed: created=%v pin %s, want %s", p.CreatedCA(), p.Pin(), first.Pin())
			}
			if p.Renewed() != tc.wantRenewed {
				t.Errorf("renewed = %v, want %v", p.Renewed(), tc.wantRenewed)
			}
			for _, h := range append([]string{"127.0.0.1", "localhost", "::1"}, tc.hostnames...) {
				if err := p.Server.Leaf.VerifyHostname(h); err != nil {
					t.Errorf("server certificate: %v", err)
				}
			}
			if left := p.Server.Leaf.NotAfter.Sub(tc.now); left < RenewBefore {
				t.Errorf("server certificate has %v left at %v", left, tc.now)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	p, err := Ensure(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Ensure(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				c.Write([]byte("ok"))
			}()
		}
	}()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		addr    string
		cfg     *tls.Config
		wantErr bool
	}{
		{"hub CA by IP", "127.0.0.1:" + port, p.ClientTLS(), false},
		{"hub CA by name", "localhost:" + port, p.ClientTLS(), false},
		{"another hub's CA", "127.0.0.1:" + port, other.ClientTLS(), true},
		{"system roots", "127.0.0.1:" + port, &tls.Config{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", tc.addr, tc.cfg)
			if err == nil {
				c.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("dial: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
