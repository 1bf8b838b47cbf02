//go:build !unix

package apply

import "time"

func cpuTime() time.Duration { return 0 }
