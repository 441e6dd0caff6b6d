// Package queryrun runs a sluice query as the subject of a measurement, for
// the harnesses that measure one (the rehearsal and the benchmarks): it
// renders the query as a pipeline file (Query, Setup), starts it in a
// child `sluice run --stats` process or inside this process (Runner),
// stops it, and gives what the harness reads afterwards — the progress of
// every batch (ReadProgress), the process id to sample /proc with
// (internal/procstat), its peak RSS and its CPU time.
package queryrun
