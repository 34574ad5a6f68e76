package dht

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// metrics are one node's Prometheus collectors. They always count;
// Config.Registerer decides whether anyone scrapes them. The reason label of
// rejections is the record sentinel's text ("record expired").
type metrics struct {
	records      *prometheus.CounterVec // outcome=accepted|rejected, reason
	finds        *prometheus.CounterVec // outcome=found|none|error
	findFirst    prometheus.Histogram   // time to the first verified result
	findResults  *prometheus.CounterVec // source
	healthChecks *prometheus.CounterVec // outcome=ok|fail
	collectors   []prometheus.Collector // everything to register

	mu       sync.Mutex
	rejected map[error]uint64 // by record reason, for Node.Rejections
}

func newMetrics(s *store.Store, providers func() []ProviderState) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netget_records_total",
			Help: "Signed records offered to this node, by outcome and, for rejections, reason."},
			[]string{"outcome", "reason"}),
		finds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netget_finds_total",
			Help: "Finds run by this node, by outcome."}, []string{"outcome"}),
		findFirst: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "netget_find_first_result_seconds",
			Help:    "Time from the start of a find to its first verified result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}),
		findResults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netget_find_results_total",
			Help: "Verified find results, by the path that brought them."}, []string{"source"}),
		healthChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netget_health_checks_total",
			Help: "Provider health checks, by outcome."}, []string{"outcome"}),
		rejected: make(map[error]uint64),
	}
	count := func(state string) func() float64 {
		return func() float64 {
			n := 0
			for _, p := range providers() {
				if p.state() == state {
					n++
				}
			}
			return float64(n)
		}
	}
	const providersHelp = "Providers this node holds live records for, by what its health checks found " +
		"(pending: not checked yet, not served)."
	var states []prometheus.Collector
	for _, state := range []string{"healthy", "pending", "unhealthy"} {
		states = append(states, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netget_providers", Help: providersHelp,
			ConstLabels: prometheus.Labels{"state": state}}, count(state)))
	}
	stored := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netget_records_stored",
		Help: "Signed records this node holds."}, func() float64 { return float64(s.Len()) })
	storedBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netget_records_stored_bytes",
		Help: "What the records this node holds cost in its store's bytes budget (envelopes plus index)."},
		func() float64 { return float64(s.Bytes()) })
	m.collectors = append([]prometheus.Collector{m.records, m.finds, m.findFirst, m.findResults, m.healthChecks,
		stored, storedBytes}, states...)
	return m
}

// register adds the collectors to r.
func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range m.collectors {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("%w: metrics: %w", ErrBadConfig, err)
		}
	}
	return nil
}

// record counts a record offered to the node: accepted when err is nil,
// else rejected by its record reason (other errors are not counted).
func (m *metrics) record(err error) {
	if err == nil {
		m.records.WithLabelValues("accepted", "").Inc()
		return
	}
	reason := record.Reason(err)
	for _, e := range []error{ErrStoreFull, ErrKeyQuota, ErrSourceQuota, ErrPrivateAddrs} { // the store's refusals
		if reason == nil && errors.Is(err, e) {
			reason = e
		}
	}
	if reason == nil {
		return
	}
	m.records.WithLabelValues("rejected", reason.Error()).Inc()
	m.mu.Lock()
	m.rejected[reason]++
	m.mu.Unlock()
}

// rejections returns the rejection counts by reason.
func (m *metrics) rejections() map[error]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.rejected)
}

// find counts a finished find and how many results it streamed.
func (m *metrics) find(results int, err error) {
	switch {
	case err != nil:
		m.finds.WithLabelValues("error").Inc()
	case results == 0:
		m.finds.WithLabelValues("none").Inc()
	default:
		m.finds.WithLabelValues("found").Inc()
	}
}

// result counts one streamed find result; the first of a find is timed.
func (m *metrics) result(src Source, elapsed time.Duration, first bool) {
	m.findResults.WithLabelValues(string(src)).Inc()
	if first {
		m.findFirst.Observe(elapsed.Seconds())
	}
}

func (m *metrics) healthCheck(ok bool) {
	if ok {
		m.healthChecks.WithLabelValues("ok").Inc()
	} else {
		m.healthChecks.WithLabelValues("fail").Inc()
	}
}
