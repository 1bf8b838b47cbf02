package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Rate is a transfer rate in bytes per second, written as text with a unit
// ("500KiB", "2MB", "1048576"); zero means no limit.
type Rate int64

// rateUnits are the suffixes ParseRate knows, longest first so "MiB" is not
// read as "B".
var rateUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ErrBadRate: a rate that is not a positive amount of bytes per second.
var ErrBadRate = errors.New("invalid rate")

// ParseRate reads a positive rate like "2MiB", "500kB" or "65536" (bytes
// per second; a trailing "/s" is allowed). Zero, negative and unparsable
// rates are ErrBadRate: "no limit" is said by leaving the key out.
func ParseRate(text string) (Rate, error) {
	s := strings.TrimSuffix(strings.TrimSpace(text), "/s")
	mult := int64(1)
	for _, u := range rateUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%w %q: write bytes per second like \"2MiB\", \"500kB\" or \"65536\"", ErrBadRate, text)
	case f <= 0:
		return 0, fmt.Errorf("%w %q: a rate must be above 0 (to lift a limit, say \"unlimited\")", ErrBadRate, text)
	case f*float64(mult) > 1<<50:
		return 0, fmt.Errorf("%w %q: too large", ErrBadRate, text)
	}
	return Rate(max(1, int64(f*float64(mult)))), nil
}

// String writes r in the largest binary unit that divides it.
func (r Rate) String() string {
	switch {
	case r <= 0:
		return "unlimited"
	case r%(1<<30) == 0:
		return strconv.FormatInt(int64(r)>>30, 10) + "GiB"
	case r%(1<<20) == 0:
		return strconv.FormatInt(int64(r)>>20, 10) + "MiB"
	case r%(1<<10) == 0:
		return strconv.FormatInt(int64(r)>>10, 10) + "KiB"
	}
	return strconv.FormatInt(int64(r), 10) + "B"
}

// MarshalText writes r like String.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a rate; "unlimited", "" and "0" mean no limit.
func (r *Rate) UnmarshalText(b []byte) error {
	switch s := strings.TrimSpace(string(b)); s {
	case "", "0", "unlimited":
		*r = 0
		return nil
	}
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
