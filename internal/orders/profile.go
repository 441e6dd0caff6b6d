package orders

import (
	"fmt"
	"math"
	"time"
)

// Profile is a production rate over time: Base records per second, except
// during [SpikeAt, SpikeAt+SpikeFor) where the rate is Base*Spike. A zero
// SpikeFor means no spike; a Spike of 0 with a SpikeFor models an outage of
// the upstream (nothing is produced for SpikeFor).
type Profile struct {
	Base     float64       // records per second
	Spike    float64       // rate multiplier during the spike
	SpikeAt  time.Duration // spike start, since the producer started
	SpikeFor time.Duration // spike length
}

// Validate reports a profile that cannot be run: negative or non-finite
// rates, negative durations.
func (p Profile) Validate() error {
	switch {
	case math.IsNaN(p.Base) || math.IsInf(p.Base, 0) || p.Base < 0:
		return fmt.Errorf("orders: profile base rate %v must be a finite number ≥ 0", p.Base)
	case math.IsNaN(p.Spike) || math.IsInf(p.Spike, 0) || p.Spike < 0:
		return fmt.Errorf("orders: profile spike multiplier %v must be a finite number ≥ 0", p.Spike)
	case p.SpikeAt < 0 || p.SpikeFor < 0:
		return fmt.Errorf("orders: profile spike at %v for %v: durations must be ≥ 0", p.SpikeAt, p.SpikeFor)
	}
	return nil
}

// inSpike reports whether elapsed falls in the spike window.
func (p Profile) inSpike(elapsed time.Duration) bool {
	return p.SpikeFor > 0 && elapsed >= p.SpikeAt && elapsed-p.SpikeAt < p.SpikeFor
}

// RateAt returns the rate in records per second at elapsed since the start.
func (p Profile) RateAt(elapsed time.Duration) float64 {
	if p.inSpike(elapsed) {
		return p.Base * p.Spike
	}
	return p.Base
}

// Expected returns how many records the profile produces in [0, elapsed):
// the integral of RateAt. A producer that has issued floor(Expected(t))
// records by time t is exactly on schedule.
func (p Profile) Expected(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	n := p.Base * elapsed.Seconds()
	if p.SpikeFor > 0 && elapsed > p.SpikeAt {
		overlap := min(elapsed-p.SpikeAt, p.SpikeFor)
		n += p.Base * (p.Spike - 1) * overlap.Seconds()
	}
	return n
}
