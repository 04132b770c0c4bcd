package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors, wrapped with the operation that failed.
var (
	// ErrClosed: QEMU has exited, the VM was closed, or a connection to
	// QEMU ended.
	ErrClosed = errors.New("closed")
	// ErrNoAgent: a guest agent method was called without
	// Config.GuestAgent.
	ErrNoAgent = errors.New("no guest agent channel (Config.GuestAgent is false)")
	// ErrNotPoweredOff: Shutdown's context ended before the guest
	// powered off, and QEMU was killed.
	ErrNotPoweredOff = errors.New("the guest did not power off")
	// ErrMessageTooLarge: QEMU or the guest agent sent a message over the
	// size limit.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrBadMessage: QEMU or the guest agent sent something that is not
	// a message.
	ErrBadMessage = errors.New("malformed message")
	// ErrBadImage: a screendump file could not be decoded.
	ErrBadImage = errors.New("malformed image")
)

// Debian's OVMF (package ovmf), without Secure Boot.
const (
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// qemuBinary is the QEMU system emulator, looked up in $PATH.
const qemuBinary = "qemu-system-x86_64"

// Config describes a virtual machine. Its zero value is a machine with no
// disk; zero fields take the defaults given.
type Config struct {
	// Image is the boot disk, a raw or qcow2 file (told apart by its
	// first bytes), attached as a virtio disk that the firmware boots
	// first. Empty means no boot disk.
	Image string
	// Snapshot leaves Image unmodified: the guest's writes go to a
	// temporary overlay that QEMU drops when it exits.
	Snapshot bool
	// MemoryMiB is the guest's memory (default 1024).
	MemoryMiB int
	// CPUs is the number of virtual CPUs (default 2).
	CPUs int
	// Width and Height are the display size the guest is offered
	// (default 1080×1920, the portrait kiosk screen): virtio-vga's
	// preferred mode, which Debian's 6.1 kernel (virtio-gpu) sets. OVMF
	// ignores it and shows 1280×800 until then. Tap maps its coordinates
	// onto this size.
	Width, Height int
	// Drives are more virtio disks, after Image.
	Drives []Drive
	// Net is the network; user-mode networking is on by default.
	Net NetConfig
	// GuestAgent adds the virtio-serial port org.qemu.guest_agent.0 that
	// qemu-ga in the guest serves, for Exec, WriteFile and ReadFile.
	GuestAgent bool
	// Watchdog adds an i6300esb watchdog; when it fires QEMU resets the
	// machine and emits a WATCHDOG event.
	Watchdog bool
	// Accel is "kvm" (the default) or "tcg", QEMU's emulator: slower,
	// but it runs where KVM cannot (see ProbeAccel).
	Accel string
	// Dir receives serial.log (the console), qemu.log (QEMU's own
	// output), the firmware's variable store and screendumps. Empty
	// means a temporary directory that Close removes.
	Dir string
	// Log receives what the VM does; nil discards it.
	Log *slog.Logger
	// OVMFCode is the firmware (default DefaultOVMFCode). OVMFVars is
	// the variable store copied for this machine, so the file itself is
	// never written (default DefaultOVMFVars).
	OVMFCode, OVMFVars string
}

// Drive is a virtio disk image.
type Drive struct {
	Path     string // a raw or qcow2 file
	ReadOnly bool
	// Serial, if set, is the disk's serial number: the guest finds the
	// disk as /dev/disk/by-id/virtio-<Serial>.
	Serial string
}

// NetConfig is the guest's network: a virtio NIC on QEMU's user-mode
// network, where the guest is 10.0.2.15 and reaches the host's loopback
// at 10.0.2.2. Nothing outside can reach the guest but through Forward.
//
// With Restrict the guest reaches nothing outside QEMU (not the host, not
// the world: QEMU's restrict=on) but the host ports named in Services,
// each at an address and port of the guest network's choosing, so a test
// can hand the guest a hub while nothing the guest sends leaves loopback.
type NetConfig struct {
	Off      bool      // no network device at all
	Forward  []Forward // host ports forwarded to the guest
	Restrict bool
	Services []Service // with Restrict: host services the guest may reach
}

// Service makes 127.0.0.1:HostPort on the host reachable from the guest at
// GuestAddr:GuestPort (an address on 10.0.2.0/24 other than QEMU's own,
// e.g. 10.0.2.100). Each connection runs socat on the host (QEMU's
// guestfwd=...-cmd:), so the Debian package socat must be installed.
type Service struct {
	GuestAddr string
	GuestPort int
	HostPort  int
}

// Forward forwards TCP connections to 127.0.0.1:HostPort on the host to
// GuestPort in the guest.
type Forward struct {
	HostPort, GuestPort int
}

func (cfg *Config) setDefaults() error {
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Width == 0 && cfg.Height == 0 {
		cfg.Width, cfg.Height = 1080, 1920
	}
	if cfg.Accel == "" {
		cfg.Accel = "kvm"
	}
	if cfg.OVMFCode == "" {
		cfg.OVMFCode = DefaultOVMFCode
	}
	if cfg.OVMFVars == "" {
		cfg.OVMFVars = DefaultOVMFVars
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.MemoryMiB < 64:
		return fmt.Errorf("vm: config: MemoryMiB %d is under 64", cfg.MemoryMiB)
	case cfg.CPUs < 1 || cfg.CPUs > 64:
		return fmt.Errorf("vm: config: CPUs %d out of range", cfg.CPUs)
	case cfg.Width < 16 || cfg.Height < 16 || cfg.Width > 8192 || cfg.Height > 8192:
		return fmt.Errorf("vm: config: display %d×%d out of range", cfg.Width, cfg.Height)
	case cfg.Accel != "kvm" && cfg.Accel != "tcg":
		return fmt.Errorf("vm: config: Accel %q is neither kvm nor tcg", cfg.Accel)
	}
	for _, sv := range cfg.Net.Services {
		if ip := net.ParseIP(sv.GuestAddr); ip == nil || ip.To4() == nil || sv.GuestPort < 1 || sv.GuestPort > 65535 || sv.HostPort < 1 || sv.HostPort > 65535 {
			return fmt.Errorf("vm: config: service %s:%d → %d: want an IPv4 address and ports 1-65535", sv.GuestAddr, sv.GuestPort, sv.HostPort)
		}
	}
	if len(cfg.Net.Services) > 0 {
		if _, err := exec.LookPath("socat"); err != nil {
			return fmt.Errorf("vm: config: Net.Services need socat on the host (apt-get install socat): %w", err)
		}
	}
	for _, f := range cfg.Net.Forward {
		if f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535 {
			return fmt.Errorf("vm: config: forward %d to %d: port out of range", f.HostPort, f.GuestPort)
		}
	}
	for _, f := range []string{cfg.OVMFCode, cfg.OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("vm: config: firmware: %w (apt-get install ovmf)", err)
		}
	}
	return nil
}

// VM is a running QEMU. Its methods may be called from several
// goroutines. Close it when done.
type VM struct {
	cfg     Config // with defaults
	log     *slog.Logger
	dir     string
	tempDir bool // remove dir on Close

	cmd     *exec.Cmd
	done    chan struct{} // closed when QEMU has exited
	waitErr error         // QEMU's exit; read after done
	output  *tailBuffer   // the end of QEMU's stdout and stderr

	qmp     *client
	events  *eventLog
	console *console
	serial  net.Conn
	serDone chan struct{} // closed when the console copier ends
	serLog  *os.File
	agent   *agent // nil without Config.GuestAgent

	screenMu sync.Mutex
	ppmOnly  bool // QEMU cannot write PNG; guarded by screenMu

	closeOnce sync.Once
	closeErr  error
}

// Start starts QEMU, connects to its monitor, console and guest agent
// channel, and lets the guest run. ctx bounds the start only; the machine
// runs until Shutdown, Kill or Close (or a crash), and QEMU is killed if
// this process dies.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	qemu, err := exec.LookPath(qemuBinary)
	if err != nil {
		return nil, fmt.Errorf("vm: %w (apt-get install qemu-system-x86 ovmf qemu-utils)", err)
	}
	v := &VM{
		cfg:     cfg,
		log:     cfg.Log,
		dir:     cfg.Dir,
		done:    make(chan struct{}),
		output:  &tailBuffer{max: 4096},
		events:  newEventLog(),
		console: newConsole(),
		serDone: make(chan struct{}),
	}
	if err := v.start(ctx, qemu); err != nil {
		return nil, errors.Join(err, v.Close())
	}
	return v, nil
}

// start does Start's work; on error, Close undoes what it did.
func (v *VM) start(ctx context.Context, qemu string) error {
	cfg := &v.cfg
	var err error
	if v.dir == "" {
		if v.dir, err = os.MkdirTemp("", "shequ-vm-"); err != nil {
			return fmt.Errorf("vm: %w", err)
		}
		v.tempDir = true
	} else if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return fmt.Errorf("vm: %w", err)
	}

	vars := filepath.Join(v.dir, "OVMF_VARS.fd")
	if err := copyFile(vars, cfg.OVMFVars); err != nil {
		return fmt.Errorf("vm: firmware variables: %w", err)
	}
	disks, err := cfg.disks()
	if err != nil {
		return err
	}

	// QEMU connects to these sockets as it starts; they are removed once
	// it has (or has failed to).
	sockDir, err := os.MkdirTemp("", "vm-sock-")
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(sockDir)
	names := []string{"qmp", "serial"}
	if cfg.GuestAgent {
		names = append(names, "agent")
	}
	socks := map[string]string{}
	listeners := map[string]net.Listener{}
	defer func() {
		for _, l := range listeners {
			l.Close() // accepted or abandoned; an error here changes nothing
		}
	}()
	for _, name := range names {
		socks[name] = filepath.Join(sockDir, name+".sock")
		l, err := net.Listen("unix", socks[name])
		if err != nil {
			return fmt.Errorf("vm: %w", err)
		}
		listeners[name] = l
	}

	qemuLog, err := os.Create(filepath.Join(v.dir, "qemu.log"))
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	args := cfg.args(socks, vars, disks)
	v.log.Info("vm: starting qemu", "accel", cfg.Accel, "dir", v.dir, "args", strings.Join(args, " "))
	v.cmd = exec.Command(qemu, args...)
	v.cmd.Stdout = io.MultiWriter(qemuLog, v.output)
	v.cmd.Stderr = v.cmd.Stdout
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		qemuLog.Close()
		v.cmd = nil
		return fmt.Errorf("vm: start qemu: %w", err)
	}
	go func() {
		err := v.cmd.Wait()
		if cerr := qemuLog.Close(); cerr != nil {
			v.log.Warn("vm: qemu.log", "err", cerr)
		}
		v.log.Info("vm: qemu exited", "pid", v.cmd.Process.Pid, "err", err)
		v.waitErr = err
		close(v.done)
	}()

	conns, err := accept(ctx, v.done, listeners)
	if err != nil {
		return v.startFailed(err)
	}
	v.qmp = newClient("qmp", conns["qmp"], maxQMPMessage, v.events, v.log)
	if cfg.GuestAgent {
		v.agent = newAgent(conns["agent"], v.log)
	}
	v.serial = conns["serial"]
	if v.serLog, err = os.Create(filepath.Join(v.dir, "serial.log")); err != nil {
		close(v.serDone)
		return fmt.Errorf("vm: %w", err)
	}
	go func() {
		defer close(v.serDone)
		v.console.copy(v.serial, v.serLog, v.log)
	}()

	if err := v.qmp.greeting(ctx); err != nil {
		return v.startFailed(err)
	}
	if err := v.qmp.call(ctx, "qmp_capabilities", nil, nil); err != nil {
		return v.startFailed(err)
	}
	if err := v.qmp.call(ctx, "cont", nil, nil); err != nil {
		return v.startFailed(err)
	}
	v.log.Info("vm: running", "pid", v.cmd.Process.Pid)
	return nil
}

// startFailed explains why Start failed once QEMU is running: most often
// QEMU has exited, or is about to, and said why.
func (v *VM) startFailed(err error) error {
	exit := time.NewTimer(2 * time.Second)
	defer exit.Stop()
	select {
	case <-v.done:
		return fmt.Errorf("vm: start qemu: qemu exited (%v): %w%s", v.waitErr, err, v.outputTail())
	case <-exit.C:
		return fmt.Errorf("vm: start qemu: %w%s", err, v.outputTail())
	}
}

// disk is a resolved -drive.
type disk struct {
	path, format, serial string
	readOnly, snapshot   bool
	boot                 bool
}

func (cfg *Config) disks() ([]disk, error) {
	var ds []disk
	if cfg.Image != "" {
		ds = append(ds, disk{path: cfg.Image, snapshot: cfg.Snapshot, boot: true})
	}
	for _, d := range cfg.Drives {
		ds = append(ds, disk{path: d.Path, readOnly: d.ReadOnly, serial: d.Serial})
	}
	for i := range ds {
		f, err := imageFormat(ds[i].path)
		if err != nil {
			return nil, fmt.Errorf("vm: disk: %w", err)
		}
		ds[i].format = f
	}
	return ds, nil
}

// imageFormat tells qcow2 from raw by the qcow2 magic.
func imageFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if bytes.Equal(magic, []byte("QFI\xfb")) {
		return "qcow2", nil
	}
	return "raw", nil
}

// tcgCPU is the CPU model under software emulation: QEMU's "max" without
// the AVX family. QEMU 7.2 (Debian 12) emulates AVX, AVX2 and FMA, but code
// that LLVM generates for them at run time misbehaves: Mesa's llvmpipe,
// which draws the kiosk UI where there is no GPU, segfaults in its
// rasteriser threads. Without them LLVM generates SSE4.2 code, as on
// older kiosk CPUs.
const tcgCPU = "max,-avx,-avx2,-fma,-f16c,-vaes,-vpclmulqdq"

// args returns QEMU's command line.
func (cfg *Config) args(socks map[string]string, vars string, disks []disk) []string {
	cpu := "host"
	if cfg.Accel == "tcg" {
		cpu = tcgCPU
	}
	a := []string{
		"-name", "shequ-vm",
		"-machine", "q35,accel=" + cfg.Accel,
		"-cpu", cpu,
		"-smp", strconv.Itoa(cfg.CPUs),
		"-m", strconv.Itoa(cfg.MemoryMiB),
		"-nodefaults", "-no-user-config",
		"-display", "none", "-vga", "none",
		"-S", // Start lets it run once everything is connected
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemuOpt(cfg.OVMFCode),
		"-drive", "if=pflash,format=raw,unit=1,file=" + qemuOpt(vars),
		"-chardev", "socket,id=qmp,path=" + qemuOpt(socks["qmp"]),
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "socket,id=serial0,path=" + qemuOpt(socks["serial"]),
		"-serial", "chardev:serial0",
		"-device", fmt.Sprintf("virtio-vga,xres=%d,yres=%d", cfg.Width, cfg.Height),
		"-device", "qemu-xhci,id=xhci",
		"-device", "usb-tablet,bus=xhci.0",
		"-device", "usb-kbd,bus=xhci.0",
		"-device", "virtio-rng-pci",
	}
	for i, d := range disks {
		id := fmt.Sprintf("disk%d", i)
		drive := fmt.Sprintf("file=%s,format=%s,if=none,id=%s", qemuOpt(d.path), d.format, id)
		if d.readOnly {
			drive += ",readonly=on"
		}
		if d.snapshot {
			drive += ",snapshot=on"
		}
		dev := "virtio-blk-pci,drive=" + id
		if d.boot {
			dev += ",bootindex=0"
		}
		if d.serial != "" {
			dev += ",serial=" + qemuOpt(d.serial)
		}
		a = append(a, "-drive", drive, "-device", dev)
	}
	if !cfg.Net.Off {
		netdev := "user,id=net0"
		for _, f := range cfg.Net.Forward {
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
		}
		if cfg.Net.Restrict {
			netdev += ",restrict=on"
		}
		for _, sv := range cfg.Net.Services {
			netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-cmd:socat STDIO TCP:127.0.0.1:%d", sv.GuestAddr, sv.GuestPort, sv.HostPort)
		}
		// romfile= leaves out iPXE: OVMF has its own virtio-net driver.
		a = append(a, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile=")
	}
	if cfg.GuestAgent {
		a = append(a,
			"-chardev", "socket,id=agent,path="+qemuOpt(socks["agent"]),
			"-device", "virtio-serial-pci,id=vserial",
			"-device", "virtserialport,bus=vserial.0,chardev=agent,name=org.qemu.guest_agent.0")
	}
	if cfg.Watchdog {
		a = append(a, "-device", "i6300esb", "-action", "watchdog=reset")
	}
	return a
}

// qemuOpt escapes a value inside a QEMU option list, where a comma is
// written twice.
func qemuOpt(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}

// accept accepts one connection on each listener, giving up when ctx ends
// or QEMU exits.
func accept(ctx context.Context, exited <-chan struct{}, listeners map[string]net.Listener) (map[string]net.Conn, error) {
	type result struct {
		name string
		conn net.Conn
		err  error
	}
	results := make(chan result, len(listeners))
	for name, l := range listeners {
		go func() {
			c, err := l.Accept()
			results <- result{name, c, err}
		}()
	}
	conns := map[string]net.Conn{}
	var err error
	pending := len(listeners)
	for err == nil && pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err != nil {
				err = fmt.Errorf("accept %s: %w", r.name, r.err)
				break
			}
			conns[r.name] = r.conn
		case <-exited:
			err = fmt.Errorf("qemu exited before connecting: %w", ErrClosed)
		case <-ctx.Done():
			err = fmt.Errorf("qemu did not connect: %w", context.Cause(ctx))
		}
	}
	if err == nil {
		return conns, nil
	}
	for _, l := range listeners {
		l.Close() // ends the Accepts still waiting; the error is of no use
	}
	for ; pending > 0; pending-- {
		if r := <-results; r.conn != nil {
			r.conn.Close()
		}
	}
	for _, c := range conns {
		c.Close()
	}
	return nil, err
}

func copyFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// greeting waits for QMP's greeting, the first message on a new
// connection.
func (c *client) greeting(ctx context.Context) error {
	for {
		r, err := c.receive(ctx)
		if err != nil {
			return fmt.Errorf("qmp greeting: %w", err)
		}
		if r.err != nil {
			return fmt.Errorf("qmp greeting: %w", r.err)
		}
		if r.msg.Greeting != nil {
			return nil
		}
	}
}

// PID returns QEMU's process id.
func (v *VM) PID() int { return v.cmd.Process.Pid }

// Dir returns the directory of the VM's files (Config.Dir, or the
// temporary one).
func (v *VM) Dir() string { return v.dir }

// Execute runs a QMP command with args (nil for none) and decodes its
// return value into result (nil to ignore it). A command QEMU refuses
// returns a *CommandError.
func (v *VM) Execute(ctx context.Context, command string, args, result any) error {
	return v.qmp.call(ctx, command, args, result)
}

// Status returns QEMU's run state from query-status: "running",
// "paused", "shutdown", "internal-error" (KVM could not run the guest),
// "guest-panicked" and others.
func (v *VM) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := v.qmp.call(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// WaitEvent waits for a QMP event called name (such as "RESET",
// "SHUTDOWN", "STOP", "WATCHDOG") and returns it. Events are kept from
// the start until a WaitEvent takes them, oldest first, so an event that
// came before the call is returned at once.
func (v *VM) WaitEvent(ctx context.Context, name string) (Event, error) {
	return v.events.take(ctx, name, v.qmp.done)
}

// WaitSerial waits until the serial console output since the machine
// started matches re, and returns the match. When ctx ends the error
// shows the end of the console. The output is raw (with the terminal
// escape sequences and \r\n of OVMF and Linux) and is matched as it
// arrives, so a pattern with an open end such as `login: \w+` can match a
// line still being written: end it with what follows (`\r?\n`).
func (v *VM) WaitSerial(ctx context.Context, re *regexp.Regexp) (string, error) {
	m, _, err := v.console.wait(ctx, 0, re)
	return m, err
}

// WaitSerialFrom is WaitSerial for the output from position from on (a
// SerialPos, or the end of an earlier match); it also returns the
// position after the match.
func (v *VM) WaitSerialFrom(ctx context.Context, from int64, re *regexp.Regexp) (match string, end int64, err error) {
	return v.console.wait(ctx, from, re)
}

// SerialPos returns the number of bytes the guest has written to the
// serial console so far.
func (v *VM) SerialPos() int64 { return v.console.pos() }

// Reset resets the machine, like its reset button (QMP system_reset).
func (v *VM) Reset(ctx context.Context) error {
	return v.qmp.call(ctx, "system_reset", nil, nil)
}

// Shutdown presses the ACPI power button (QMP system_powerdown) and waits
// for QEMU to exit as the guest powers off. If ctx ends first it kills
// QEMU and returns ErrNotPoweredOff. Firmware alone (OVMF) ignores the
// button.
func (v *VM) Shutdown(ctx context.Context) error {
	select {
	case <-v.done:
		return v.exitError()
	default:
	}
	if err := v.qmp.call(ctx, "system_powerdown", nil, nil); err != nil {
		select {
		case <-v.done: // exited meanwhile
			return v.exitError()
		default:
		}
		return errors.Join(fmt.Errorf("vm: shutdown: %w", err), v.Kill())
	}
	select {
	case <-v.done:
		return v.exitError()
	case <-ctx.Done():
		return errors.Join(fmt.Errorf("vm: shutdown: %w before %w; killed qemu", ErrNotPoweredOff, context.Cause(ctx)), v.Kill())
	}
}

// Kill kills QEMU at once and waits for it to exit.
func (v *VM) Kill() error {
	select {
	case <-v.done:
		return nil
	default:
	}
	if err := v.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("vm: kill qemu: %w", err)
	}
	<-v.done
	return nil
}

// Wait waits for QEMU to exit and returns its error: nil when it exited
// with status 0, as it does when the guest powers off.
func (v *VM) Wait() error {
	<-v.done
	return v.exitError()
}

// Done is closed when QEMU has exited.
func (v *VM) Done() <-chan struct{} { return v.done }

func (v *VM) exitError() error {
	if v.waitErr == nil {
		return nil
	}
	return fmt.Errorf("vm: qemu: %w%s", v.waitErr, v.outputTail())
}

// Close kills QEMU if it runs, closes the connections and, if Config.Dir
// was empty, removes the VM's directory. It may be called more than once.
func (v *VM) Close() error {
	v.closeOnce.Do(func() {
		var errs []error
		if v.cmd != nil {
			errs = append(errs, v.Kill())
		}
		if v.qmp != nil {
			v.qmp.close() // the peer is gone; nothing to learn from the error
		}
		if v.agent != nil {
			v.agent.c.close()
		}
		if v.serial != nil {
			v.serial.Close()
			<-v.serDone
		}
		if v.serLog != nil {
			errs = append(errs, v.serLog.Close())
		}
		if v.tempDir {
			errs = append(errs, os.RemoveAll(v.dir))
		}
		v.closeErr = errors.Join(errs...)
	})
	return v.closeErr
}

// outputTail returns the end of QEMU's own output, for errors.
func (v *VM) outputTail() string {
	s := strings.TrimSpace(v.output.String())
	if s == "" {
		return ""
	}
	return "; qemu says: " + s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
