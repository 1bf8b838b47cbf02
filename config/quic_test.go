package config

import (
	"errors"
	"strings"
	"testing"
)

// TestQUICKeys: quic defaults to on, an explicit false is kept, quic_port is
// bounded, and peer addresses may name their network.
func TestQUICKeys(t *testing.T) {
	c, err := Parse("config.toml", []byte("[device]\nname = \"a\"\nquic = false\nquic_port = 22200\n\n[[peer]]\nid = \"P\"\naddresses = [\"quic://192.0.2.8:22100\", \"tcp://h.example:1\"]\n"), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Device.QUIC || c.Device.QUICPort != 22200 {
		t.Fatalf("device %+v: want quic off on port 22200", c.Device)
	}
	for _, bad := range []string{
		"[device]\nname = \"a\"\nquic_port = 70000\n",
		"[device]\nname = \"a\"\n\n[[peer]]\nid = \"P\"\naddresses = [\"sctp://192.0.2.8:1\"]\n",
	} {
		_, err := Parse("config.toml", []byte(bad), Checks{})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "config.toml") {
			t.Errorf("Parse(%q): %v, want ErrInvalid naming the file", bad, err)
		}
	}
}
