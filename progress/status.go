package progress

import "sync"

// Status is Spark's StreamingQueryStatus: what the query is doing right now.
type Status struct {
	// Message is one of the Msg* constants or built by GettingOffsetsMessage
	// or TerminatedMessage.
	Message string `json:"message"`
	// IsDataAvailable is true when some source's end offset differs from
	// its start offset for the current trigger.
	IsDataAvailable bool `json:"isDataAvailable"`
	// IsTriggerActive is true from the start of a trigger until it finishes.
	IsTriggerActive bool `json:"isTriggerActive"`
}

// Spark's status messages, in the order a query goes through them.
const (
	MsgInitializingExecution = "Initializing StreamExecution"
	MsgInitializingSources   = "Initializing sources"
	MsgWritingOffsets        = "Writing offsets to log"
	MsgProcessingNewData     = "Processing new data"
	MsgNoNewDataCleaningUp   = "No new data but cleaning up state"
	MsgWaitingForData        = "Waiting for data to arrive"
	MsgWaitingForTrigger     = "Waiting for next trigger"
	MsgStopped               = "Stopped"
)

// GettingOffsetsMessage is the status message while asking a source for its
// latest offsets: "Getting offsets from <source description>".
func GettingOffsetsMessage(source string) string { return "Getting offsets from " + source }

// TerminatedMessage is the final status message of a query that failed:
// "Terminated with exception: <msg>".
func TerminatedMessage(msg string) string { return "Terminated with exception: " + msg }

// StatusHolder holds the current Status for concurrent readers (UI, API)
// while the engine updates it. The zero value holds the zero Status.
type StatusHolder struct {
	mu sync.RWMutex
	s  Status
}

// Get returns the current status.
func (h *StatusHolder) Get() Status {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.s
}

// Set replaces the status.
func (h *StatusHolder) Set(s Status) {
	h.mu.Lock()
	h.s = s
	h.mu.Unlock()
}

// Update changes the status in place under the lock.
func (h *StatusHolder) Update(f func(*Status)) {
	h.mu.Lock()
	f(&h.s)
	h.mu.Unlock()
}
