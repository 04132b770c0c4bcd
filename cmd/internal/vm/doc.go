// Package vm boots a disk image in a QEMU virtual machine and drives it the
// way a technician at the device and a test would: it watches the serial
// console, takes screenshots, touches the screen, presses keys, and runs
// commands and copies files in the guest through the QEMU guest agent.
//
// It exists for the end-to-end test of the kiosk OS image (UEFI,
// systemd-boot, Debian's kernel, a Wayland kiosk compositor showing the
// Fyne touchscreen UI at 1080×1920 portrait), and depends on nothing of
// ours. The machine is a q35 PC with Debian's OVMF firmware, no default
// devices, and:
//
//   - a virtio-vga display of Config.Width×Config.Height, read with the
//     QMP screendump command (Screendump);
//   - a USB tablet and keyboard on an xHCI controller, fed by QMP
//     input-send-event and send-key (Tap, Key);
//   - the first serial port (ttyS0) copied to serial.log in Config.Dir and
//     kept in memory for WaitSerial;
//   - optionally virtio disks, user-mode networking (the guest reaches the
//     host's loopback at 10.0.2.2), a guest agent channel, and an i6300esb
//     watchdog that resets the machine.
//
// QEMU talks to the host through unix sockets that this package listens on
// and QEMU connects to (QEMU is the client, so nothing polls for a socket
// to appear). QEMU starts paused and runs once every channel is connected,
// so no console output or event is lost. The QMP and guest agent clients
// are small and written here: one JSON message a line, every message
// bounded in size.
//
// # Requirements
//
// Debian packages qemu-system-x86, ovmf and qemu-utils (and, for this
// package's own tests, qemu-guest-agent, whose host-side agent stands in
// for the guest's):
//
//	apt-get install -y qemu-system-x86 ovmf qemu-utils qemu-guest-agent
//
// The guest image needs Debian's qemu-guest-agent for Exec, WriteFile and
// ReadFile. Its bookworm service starts qemu-ga without a block list, so
// guest-exec and guest-file-* are allowed.
//
// # Accelerators
//
// Config.Accel chooses KVM (the default) or TCG, QEMU's emulator. Not every
// /dev/kvm runs firmware: under some nested hypervisors (PVM, kvm_pvm) it
// opens and runs SeaBIOS, but OVMF stops at once with "KVM internal error"
// and Debian's kernel hangs early. ProbeAccel boots OVMF briefly and says
// which accelerator works.
package vm
