package daemon

import (
	"fmt"
	"net/http"

	"github.com/blueshift-sync/blueshift/config"
)

// Pauses and rates live in config.toml (the device's [device] paused and
// max_*_rate, each share's paused and max_*_rate): what a user set survives
// a restart and can be read and edited there. The endpoints edit the file
// under its lock and apply it at once.

// PauseResult answers the pause and resume endpoints.
type PauseResult struct {
	Share  string `json:"share,omitempty"` // empty: the whole device
	Paused bool   `json:"paused"`
}

func (d *Daemon) apiPause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("share")
		res := PauseResult{Paused: pause}
		err := EditConfig(d.home, func(c *config.Config) error {
			if ref == "" {
				c.Device.Paused = pause
				return nil
			}
			s, err := c.FindShare(ref)
			if err != nil {
				return err
			}
			s.Paused, res.Share = pause, s.ID
			return nil
		})
		if err == nil {
			err = d.Reload()
		}
		if err != nil {
			writeError(w, err)
			return
		}
		verb := "resumed"
		if pause {
			verb = "paused"
		}
		d.log.Info(verb, "share", ref)
		writeJSON(w, http.StatusOK, res)
	}
}

// Rates is GET /v1/rates and what POST /v1/rates answers: the limits in
// bytes per second, 0 for none.
type Rates struct {
	Send   int64        `json:"send"`
	Recv   int64        `json:"recv"`
	Shares []ShareRates `json:"shares"`
}

// ShareRates are one share's limits.
type ShareRates struct {
	Share string `json:"share"`
	Name  string `json:"name"`
	Send  int64  `json:"send"`
	Recv  int64  `json:"recv"`
}

// SetRates is POST /v1/rates: rates as text ("2MiB", "500kB", "65536",
// "unlimited"); an empty field leaves that limit as it is; Share empty sets
// the device's.
type SetRates struct {
	Share string `json:"share,omitempty"`
	Send  string `json:"send,omitempty"`
	Recv  string `json:"recv,omitempty"`
}

func (d *Daemon) apiRates(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.rateLimits())
}

func (d *Daemon) rateLimits() Rates {
	cfg := d.config()
	send, recv := d.deviceRates(cfg)
	out := Rates{Send: send, Recv: recv, Shares: []ShareRates{}}
	for _, s := range cfg.Shares {
		out.Shares = append(out.Shares, ShareRates{Share: s.ID, Name: s.Name, Send: int64(s.MaxSendRate), Recv: int64(s.MaxRecvRate)})
	}
	return out
}

func (d *Daemon) apiSetRates(w http.ResponseWriter, r *http.Request) {
	var req SetRates
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Send == "" && req.Recv == "" {
		writeError(w, fmt.Errorf("%w: give a send or a receive rate", errBadRequest))
		return
	}
	send, err := parseRateOrUnlimited(req.Send)
	if err != nil {
		writeError(w, err)
		return
	}
	recv, err := parseRateOrUnlimited(req.Recv)
	if err != nil {
		writeError(w, err)
		return
	}
	err = EditConfig(d.home, func(c *config.Config) error {
		sendTo, recvTo := &c.Device.MaxSendRate, &c.Device.MaxRecvRate
		if req.Share != "" {
			s, err := c.FindShare(req.Share)
			if err != nil {
				return err
			}
			sendTo, recvTo = &s.MaxSendRate, &s.MaxRecvRate
		}
		if send != nil {
			*sendTo = *send
		}
		if recv != nil {
			*recvTo = *recv
		}
		return nil
	})
	if err == nil {
		if req.Share == "" {
			d.mu.Lock()
			d.mu.runRates = nil // the user's setting replaces run's flags
			d.mu.Unlock()
		}
		err = d.Reload()
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d.rateLimits())
}

// parseRateOrUnlimited reads a rate; "" is nil (unchanged), "unlimited"
// is 0.
func parseRateOrUnlimited(s string) (*config.Rate, error) {
	switch s {
	case "":
		return nil, nil
	case "unlimited", "none":
		var zero config.Rate
		return &zero, nil
	}
	r, err := config.ParseRate(s)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// deviceRates are the device's limits: run's flags until a user sets them
// live, else config.toml's.
func (d *Daemon) deviceRates(cfg *config.Config) (send, recv int64) {
	d.mu.Lock()
	rr := d.mu.runRates
	d.mu.Unlock()
	send, recv = int64(cfg.Device.MaxSendRate), int64(cfg.Device.MaxRecvRate)
	if rr != nil {
		if rr[0] > 0 {
			send = rr[0]
		}
		if rr[1] > 0 {
			recv = rr[1]
		}
	}
	return send, recv
}
