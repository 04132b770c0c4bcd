// Package e2e holds Shequ's end-to-end tests and benchmarks: the hub, agents
// and the kiosk's screen logic wired together on loopback, against the
// embedded mochi broker and against Debian's mosquitto, with agents both
// in-process and as real child processes, and the kiosk binary in a real X
// window under Xvfb.
//
// It has no non-test code beyond this comment.
package e2e
