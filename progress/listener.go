package progress

// Listener receives a query's lifecycle events, like Spark's
// StreamingQueryListener. Through a Bus, its methods are never called
// concurrently with each other.
type Listener interface {
	// OnQueryStarted is called synchronously when the query starts; it must
	// return quickly.
	OnQueryStarted(StartedEvent)
	// OnQueryProgress is called after each executed batch.
	OnQueryProgress(ProgressEvent)
	// OnQueryIdle is called instead of OnQueryProgress for a trigger that
	// found no data (at most every idle-report interval).
	OnQueryIdle(IdleEvent)
	// OnQueryTerminated is called once when the query stops.
	OnQueryTerminated(TerminatedEvent)
}

// StartedEvent is Spark's QueryStartedEvent.
type StartedEvent struct {
	ID        string  `json:"id"`
	RunID     string  `json:"runId"`
	Name      *string `json:"name"`
	Timestamp string  `json:"timestamp"`
}

// ProgressEvent is Spark's QueryProgressEvent; it marshals as
// {"progress":{...}}.
type ProgressEvent struct {
	Progress *Progress `json:"progress"`
}

// IdleEvent is Spark's QueryIdleEvent.
type IdleEvent struct {
	ID        string `json:"id"`
	RunID     string `json:"runId"`
	Timestamp string `json:"timestamp"`
}

// TerminatedEvent is Spark's QueryTerminatedEvent. Exception is nil for a
// clean stop, else the error message.
type TerminatedEvent struct {
	ID        string  `json:"id"`
	RunID     string  `json:"runId"`
	Exception *string `json:"exception"`
}

// ListenerFuncs adapts functions to a Listener; nil fields ignore their
// event.
type ListenerFuncs struct {
	OnStarted    func(StartedEvent)
	OnProgress   func(ProgressEvent)
	OnIdle       func(IdleEvent)
	OnTerminated func(TerminatedEvent)
}

// OnQueryStarted calls f.OnStarted if set.
func (f ListenerFuncs) OnQueryStarted(e StartedEvent) {
	if f.OnStarted != nil {
		f.OnStarted(e)
	}
}

// OnQueryProgress calls f.OnProgress if set.
func (f ListenerFuncs) OnQueryProgress(e ProgressEvent) {
	if f.OnProgress != nil {
		f.OnProgress(e)
	}
}

// OnQueryIdle calls f.OnIdle if set.
func (f ListenerFuncs) OnQueryIdle(e IdleEvent) {
	if f.OnIdle != nil {
		f.OnIdle(e)
	}
}

// OnQueryTerminated calls f.OnTerminated if set.
func (f ListenerFuncs) OnQueryTerminated(e TerminatedEvent) {
	if f.OnTerminated != nil {
		f.OnTerminated(e)
	}
}
