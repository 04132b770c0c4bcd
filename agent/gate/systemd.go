package gate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Systemctl reads units with `systemctl show`.
type Systemctl struct{}

// Unit implements Units.
func (Systemctl) Unit(ctx context.Context, name string) (UnitState, error) {
	out, err := exec.CommandContext(ctx, "systemctl", "show", "-p", "ActiveState", "-p", "NRestarts", "--", name).Output()
	if err != nil {
		return UnitState{}, fmt.Errorf("systemctl show %s: %w", name, err)
	}
	return parseShow(out)
}

// parseShow reads the KEY=VALUE lines of systemctl show.
func parseShow(out []byte) (UnitState, error) {
	var s UnitState
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "ActiveState":
			s.Active, s.Failed, seen = v == "active", v == "failed", seen+1
		case "NRestarts":
			n, err := strconv.Atoi(v)
			if err != nil {
				return s, fmt.Errorf("systemctl show: NRestarts=%q: %w", v, err)
			}
			s.Restarts, seen = n, seen+1
		}
	}
	if seen != 2 {
		return s, fmt.Errorf("systemctl show: no ActiveState and NRestarts in %q", out)
	}
	return s, nil
}
