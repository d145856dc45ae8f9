package events

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Dead-letter reasons: the reason label of keygate_events_dead_letter_total.
const (
	ReasonRejected  = "rejected"   // the receiver answered 3xx or 4xx (not 408 or 429): not retried
	ReasonAttempts  = "attempts"   // every attempt (--max-attempts) failed
	ReasonQueueFull = "queue_full" // the webhook's queue was full when the event was produced
)

// Metrics are the events process's Prometheus metrics, on their own
// registry. A webhook is labelled by its index in the flags (0, 1, ...),
// never by its URL (which may hold credentials).
type Metrics struct {
	reg        *prometheus.Registry
	delivered  *prometheus.CounterVec
	deadLetter *prometheus.CounterVec
	queue      *prometheus.GaugeVec
	leader     prometheus.Gauge
	gaps       prometheus.Counter
}

// NewMetrics registers the collectors, with webhooks series for each of
// n webhooks from the start.
func NewMetrics(n int) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_events_delivered_total",
		Help: "Events a webhook answered with 2xx, by webhook index and event type.",
	}, []string{"webhook", "type"})
	m.deadLetter = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_events_dead_letter_total",
		Help: "Events given up for a webhook, by webhook index and reason (rejected, attempts, queue_full).",
	}, []string{"webhook", "reason"})
	m.queue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keygate_events_queue_length",
		Help: "Events waiting for a webhook, the one being sent included.",
	}, []string{"webhook"})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keygate_events_leader",
		Help: "1 while this replica holds the events lease and sends, else 0.",
	})
	m.gaps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keygate_events_journal_gaps_total",
		Help: "Times the change journal had lost entries this replica had not read (KV max_versions): changes in the gap sent no event.",
	})
	for i := range n {
		w := strconv.Itoa(i)
		m.queue.WithLabelValues(w)
		for _, r := range []string{ReasonRejected, ReasonAttempts, ReasonQueueFull} {
			m.deadLetter.WithLabelValues(w, r)
		}
	}
	m.reg.MustRegister(m.delivered, m.deadLetter, m.queue, m.leader, m.gaps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Gatherer is the registry, for tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// The hooks are nil-safe: a Runner without metrics passes nil.

func (m *Metrics) onDelivered(webhook int, t Type) {
	if m != nil {
		m.delivered.WithLabelValues(strconv.Itoa(webhook), string(t)).Inc()
	}
}

func (m *Metrics) onDeadLetter(webhook int, reason string) {
	if m != nil {
		m.deadLetter.WithLabelValues(strconv.Itoa(webhook), reason).Inc()
	}
}

func (m *Metrics) setQueue(webhook, n int) {
	if m != nil {
		m.queue.WithLabelValues(strconv.Itoa(webhook)).Set(float64(n))
	}
}

func (m *Metrics) setLeader(on bool) {
	if m != nil {
		v := 0.0
		if on {
			v = 1
		}
		m.leader.Set(v)
	}
}

func (m *Metrics) onGap() {
	if m != nil {
		m.gaps.Inc()
	}
}
