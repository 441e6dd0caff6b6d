package engine

// SetStartWorker replaces how runTasks starts its helper workers and
// returns a function that restores the default.
func SetStartWorker(f func(work func())) (restore func()) {
	old := startWorker
	startWorker = f
	return func() { startWorker = old }
}
