package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"
)

// probeTimeout bounds ProbeAccel's boot of OVMF under KVM, which reaches
// its boot manager within a few seconds where KVM works.
const probeTimeout = 20 * time.Second

// bootManager matches OVMF's first boot manager line on the console.
var bootManager = regexp.MustCompile(`BdsDxe: `)

// ProbeAccel returns the accelerator to boot OVMF with on this machine:
// "kvm" when /dev/kvm opens and OVMF reaches its boot manager under it,
// else "tcg", logging why. It takes about as long as OVMF needs to start.
// An error means QEMU could not be run at all.
func ProbeAccel(ctx context.Context, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kvm, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		log.Info("vm: using tcg: /dev/kvm does not open", "err", err)
		return "tcg", nil
	}
	if err := kvm.Close(); err != nil {
		return "", fmt.Errorf("vm: probe: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	v, err := Start(ctx, Config{Accel: "kvm", MemoryMiB: 256, CPUs: 1, Width: 640, Height: 480, Net: NetConfig{Off: true}, Log: log})
	if err != nil {
		if errors.Is(err, ErrClosed) { // QEMU exited: KVM refused the machine
			log.Info("vm: using tcg: qemu exits under kvm", "err", err)
			return "tcg", nil
		}
		return "", fmt.Errorf("vm: probe: %w", err)
	}
	defer v.Close()

	// Wait for the boot manager, or for KVM to stop the machine with an
	// internal error (a STOP event), or for QEMU to exit.
	booted := make(chan error, 1)
	go func() {
		_, err := v.WaitSerial(ctx, bootManager)
		booted <- err
	}()
	stopped := make(chan error, 1)
	go func() {
		_, err := v.WaitEvent(ctx, "STOP")
		stopped <- err
	}()
	select {
	case err := <-booted:
		if err == nil {
			log.Info("vm: using kvm")
			return "kvm", nil
		}
		log.Info("vm: using tcg: OVMF does not boot under kvm", "err", err)
	case err := <-stopped:
		if err == nil {
			status, serr := v.Status(ctx)
			log.Info("vm: using tcg: kvm stopped the machine", "status", status, "err", serr)
		} else {
			log.Info("vm: using tcg: OVMF does not boot under kvm", "err", err)
		}
	case <-v.Done():
		log.Info("vm: using tcg: qemu exited under kvm", "err", v.Wait())
	}
	return "tcg", nil
}
