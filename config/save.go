package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	toml "github.com/pelletier/go-toml/v2"
)

// fileMode keeps share keys private to the device's user.
const fileMode = 0o600

const fileHeader = `# Blueshift device configuration, written by the blueshift command line.
# Unknown keys are errors; the package doc of config/ lists every key.
# This file holds share keys: keep it private (mode 0600).

`

// Save validates c and writes it to home atomically, mode 0600. The home is
// created (mode 0700) when missing.
func (c *Config) Save(home string) error { return c.SaveFile(Path(home)) }

// SaveFile is Save to an explicit file. Either the old file or the new one is
// there after a crash, never a mix; no temp file is left behind.
func (c *Config) SaveFile(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	var buf bytes.Buffer
	buf.WriteString(fileHeader)
	enc := toml.NewEncoder(&buf).SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create home %s: %w", dir, err)
	}
	return writeAtomic(path, buf.Bytes())
}

// writeAtomic is temp file in the same directory, fsync, rename, fsync of the
// directory (so the rename itself survives a crash).
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(fileMode); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
