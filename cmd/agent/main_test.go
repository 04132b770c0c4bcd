package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr bool
	}{
		{"default is run", []string{"-data", "/x"}, "run", false},
		{"run with socket group", []string{"run", "-socket-group", "kiosk", "-hub", "https://h:8443", "-ca-pin", "ab"}, "run", false},
		{"enrol", []string{"enrol", "-data", "/x", "-hub", "https://h:8443", "-code", "1234-5678-9012"}, "enrol", false},
		{"enrol without code", []string{"enrol", "-hub", "https://h:8443"}, "enrol", true},
		{"enrol without hub", []string{"enrol", "-code", "123456789012"}, "enrol", true},
		{"unknown flag", []string{"-kiosk", "k1"}, "run", true},
		{"stray argument", []string{"run", "extra"}, "run", true},
		{"status", []string{"status", "-data", "/x"}, "status", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(tc.args, io.Discard)
			if (err != nil) != tc.wantErr || c.name != tc.want {
				t.Fatalf("parse(%q) = %s, %v", tc.args, c.name, err)
			}
			if c.name == "run" && !tc.wantErr && c.run.SoftwareVersion == "" {
				t.Error("software version not set")
			}
		})
	}
}

func TestStatusOfFreshDevice(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"status", "-data", t.TempDir()}, &out, slog.New(slog.DiscardHandler))
	if !errors.Is(err, errNotEnrolled) {
		t.Fatalf("status of a fresh device = %v, want errNotEnrolled", err)
	}
	if !strings.Contains(out.String(), "not enrolled") {
		t.Errorf("status printed %q", out.String())
	}
}
