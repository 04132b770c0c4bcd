package vm_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/shequ/shequ/cmd/internal/vm"
)

// Boot the kiosk image, wait for it, install a package through the guest
// agent, touch the screen and keep a screenshot.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	accel, err := vm.ProbeAccel(ctx, slog.Default())
	if err != nil {
		log.Fatal(err)
	}
	m, err := vm.Start(ctx, vm.Config{
		Image:      "kiosk.img",
		Snapshot:   true,
		GuestAgent: true,
		Accel:      accel,
		Net:        vm.NetConfig{Forward: []vm.Forward{{HostPort: 2222, GuestPort: 22}}},
		Dir:        "vm",
		Log:        slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	if _, err := m.WaitSerial(ctx, regexp.MustCompile(`Reached target.*Graphical Interface`)); err != nil {
		log.Fatal(err)
	}
	if err := m.GuestPing(ctx); err != nil {
		log.Fatal(err)
	}
	deb, err := os.ReadFile("shequ-agent.deb")
	if err != nil {
		log.Fatal(err)
	}
	if err := m.WriteFile(ctx, "/tmp/shequ-agent.deb", deb); err != nil {
		log.Fatal(err)
	}
	_, stderr, code, err := m.Exec(ctx, "/usr/bin/dpkg", "-i", "/tmp/shequ-agent.deb")
	if err != nil || code != 0 {
		log.Fatalf("dpkg: %d, %v: %s", code, err, stderr)
	}

	if err := m.Tap(ctx, 540, 1500); err != nil { // a digit key on the screen
		log.Fatal(err)
	}
	img, err := m.Screendump(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := vm.SavePNG("enrol.png", img); err != nil {
		log.Fatal(err)
	}
	if err := m.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}
