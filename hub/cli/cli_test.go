package cli

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/orgtree"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{DataDir: dir, Org: tree, MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, append(args[:1:1], append([]string{"-data", dir, "-hub", h.HTTPURL()}, args[1:]...)...),
			strings.NewReader("correct horse battery staple\n"), &out,
			slog.New(slog.DiscardHandler), Options{})
		return out.String(), err
	}
	tests := []struct {
		name    string
		args    []string
		want    string // regexp
		wantErr string
	}{
		{"claim", []string{"claim", "-community", "ruiyi", "-ttl", "1h"}, `claim code:  \d{4}-\d{4}-\d{4}\n(.|\n)*CA pin:     ` + h.CAPin(), ""},
		{"claim for a kiosk of another community", []string{"claim", "-community", "ruiyi", "-kiosk", "k-sangcheng-01"}, "", "not a kiosk of community"},
		{"claim without community", []string{"claim"}, "", "-community is required"},
		{"devices lists the pending claim", []string{"devices"}, `pending`, ""},
		{"revoke unknown", []string{"revoke", "nope"}, "", "404"},
		{"revoke without id", []string{"revoke"}, "", "want 1 argument"},
		{"rotate-key", []string{"rotate-key"}, `serial 2`, ""},
		{"ca-pin", []string{"ca-pin"}, `^` + h.CAPin() + `\n$`, ""},
		{"unknown command", []string{"frobnicate"}, "", "unknown command"},
		{"user add", []string{"user", "add", "-username", "zhang.wei", "-name", "张伟", "-role", "officer", "-node", "wuliqiao"},
			`^account [0-9a-f-]+: zhang.wei \(officer\) at wuliqiao\n$`, ""},
		{"user add taken", []string{"user", "add", "-username", "zhang.wei", "-role", "officer", "-node", "wuliqiao"}, "", "409"},
		{"user add wrong level", []string{"user", "add", "-username", "li.na", "-role", "officer", "-node", "sangcheng"}, "", "400"},
		{"user without add", []string{"user", "-username", "x"}, "", "user add"},
		{"users", []string{"users"}, `zhang.wei +张伟 +officer +wuliqiao`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(tc.want).MatchString(out) {
				t.Fatalf("output %q does not match %q", out, tc.want)
			}
		})
	}
	t.Run("wrong token is refused", func(t *testing.T) {
		c, err := NewClient(dir, h.HTTPURL())
		if err != nil {
			t.Fatal(err)
		}
		c.Token = "not-the-token-0123456789"
		if _, err := c.Devices(ctx); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err = %v, want 401", err)
		}
	})
}

func TestMosquittoConf(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := Run(context.Background(), []string{"mosquitto-conf", "-data", dir, "-mqtt", "127.0.0.1:18883",
		"-org", filepath.Join("..", "..", "packaging", "demo", "org.json")}, strings.NewReader(""), &out, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"allow_anonymous false", "per_listener_settings false", "listener 18883 127.0.0.1",
		"use_username_as_clientid true", filepath.Join(dir, "mosquitto", "passwd"), filepath.Join(dir, "tls", "server.pem")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("mosquitto.conf lacks %q:\n%s", want, out.String())
		}
	}
}
