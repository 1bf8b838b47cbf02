package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// Files in a home.
const (
	LockFile       = "daemon.lock"
	SocketFile     = "control.sock"
	DBDir          = "db"
	configLockFile = "config.lock"
)

// ErrRunning: another daemon holds this home.
var ErrRunning = errors.New("a daemon is already running for this home")

// Checks validates the ID and key text forms in a configuration.
func Checks() config.Checks {
	return config.Checks{
		DeviceID: func(s string) error { _, err := identity.ParseDeviceID(s); return err },
		ShareID:  func(s string) error { _, err := share.ParseID(s); return err },
		ShareKey: func(s string) error { _, err := share.ParseKey(s); return err },
	}
}

// LoadConfig reads home's configuration with every check.
func LoadConfig(home string) (*config.Config, error) {
	return config.LoadWith(home, Checks())
}

// EditConfig loads home's configuration, lets edit change it and saves it,
// holding config.lock throughout so that the CLI and the daemon never lose
// each other's edits. When edit fails nothing is saved.
func EditConfig(home string, edit func(c *config.Config) error) error {
	unlock, err := lockFile(filepath.Join(home, configLockFile), true)
	if err != nil {
		return fmt.Errorf("lock configuration of %s: %w", home, err)
	}
	defer unlock()
	c, err := LoadConfig(home)
	if err != nil {
		return err
	}
	if err := edit(c); err != nil {
		return err
	}
	return c.Save(home)
}

// lockHome takes the daemon lock of home, or fails with ErrRunning naming
// the holder's process ID.
func lockHome(home string) (unlock func(), err error) {
	path := filepath.Join(home, LockFile)
	unlock, err = lockFile(path, false)
	if errors.Is(err, errLocked) {
		pid := "unknown"
		if b, rerr := os.ReadFile(path); rerr == nil && len(b) > 0 {
			pid = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("%w (home %s, process %s): stop it first, or pass another --home", ErrRunning, home, pid)
	}
	if err != nil {
		return nil, fmt.Errorf("lock home %s: %w", home, err)
	}
	os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return unlock, nil
}
