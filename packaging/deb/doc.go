// Package deb holds the tests of Shequ's Debian packaging; it has no code of
// its own. The packaging is the rest of this directory: build.sh (make
// package) builds shequ-hub, shequ-agent and shequ-kiosk with nfpm from the
// nfpm configurations (*.yaml), the systemd units, sysusers.d and
// tmpfiles.d files, configuration files, maintainer script templates
// (*.in), man pages (man/) and lintian overrides here; version.sh names the
// version. docs/deploy.md describes the packages.
//
// The tests build the amd64 packages twice into temporary directories and
// check that the two builds are byte-identical, that lintian reports no
// error or warning that is not overridden (and that every override says
// why), and what the packages hold. They need nfpm (build.sh installs it
// with go install), lintian and dpkg-dev (packaging/dev/deps.sh); a missing
// tool fails them. With -short they are skipped.
package deb
