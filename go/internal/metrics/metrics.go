// Package metrics holds one server's Prometheus metrics, in a registry of
// its own (several servers may run in one process).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the proxy's counters and histograms.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestSeconds  *prometheus.HistogramVec
	backendSeconds  *prometheus.HistogramVec
	requestBytes    *prometheus.CounterVec
	responseBytes   *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	cacheRequests   *prometheus.CounterVec
	callableCalls   *prometheus.CounterVec
	callableSeconds *prometheus.HistogramVec
	iamFetches      *prometheus.CounterVec
	throttled       *prometheus.CounterVec
	limitFallbacks  *prometheus.CounterVec
	presignRefused  *prometheus.CounterVec
	// statusLabels are the status label values of every HTTP status,
	// made once: strconv.Itoa would allocate one per request.
	statusLabels [600]string

	// requestSeries holds, for each bucket, operation and status seen,
	// the series Request adds to: one look-up per request where
	// WithLabelValues would hash and look up the labels of each of four
	// metrics; backendSeries, Backend's by bucket. They hold no more
	// entries than the metrics have series.
	mu            sync.RWMutex
	requestSeries map[requestKey]*requestSeries
	backendSeries map[string]prometheus.Observer
}

// requestKey is what Request's series are labelled by.
type requestKey struct {
	bucket, operation string
	status            int
}

// requestSeries are the series one finished request adds to.
type requestSeries struct {
	requests          prometheus.Counter
	seconds           prometheus.Observer
	inBytes, outBytes prometheus.Counter
}

// New creates the metrics of one server.
func New() *Metrics {
	m := &Metrics{
		registry:        prometheus.NewRegistry(),
		requests:        counter("osp_requests_total", "Client requests by bucket, S3 operation and HTTP status.", "bucket", "operation", "status"),
		requestSeconds:  histogram("osp_request_duration_seconds", "Time from request to the end of the response, by S3 operation.", 0.0005, "operation"),
		backendSeconds:  histogram("osp_backend_duration_seconds", "Time from sending a request to the backend to its response headers.", 0.0005, "bucket"),
		requestBytes:    counter("osp_request_bytes_total", "Request body bytes received from clients.", "bucket"),
		responseBytes:   counter("osp_response_bytes_total", "Response body bytes sent to clients.", "bucket"),
		authFailures:    counter("osp_auth_failures_total", "Requests refused by authentication or authorization, by S3 error code.", "reason"),
		cacheRequests:   counter("osp_cache_requests_total", "Cache lookups by cache and result (hit or miss).", "cache", "result"),
		callableCalls:   counter("osp_callable_calls_total", "Calls of Python callables by callable and outcome (ok, error, timeout, throttled: refused at max_callable_calls).", "callable", "outcome"),
		callableSeconds: histogram("osp_callable_duration_seconds", "Time Python callables took.", 0.0001, "callable"),
		iamFetches:      counter("osp_iam_token_fetches_total", "IBM Cloud IAM token requests by outcome (ok, error).", "outcome"),
		throttled:       counter("osp_throttled_requests_total", "Requests refused with SlowDown by a request rate limit, by access key (only keys named in rate_limits; every other key is _other).", "access_key"),
		limitFallbacks:  counter("osp_limit_fallbacks_total", "Limit decisions a failure policy made because the state store did not answer, by limit and policy.", "limit", "policy"),
		presignRefused:  counter("osp_presigned_refused_total", "Presigned requests refused by a presigned URL limit, by reason (uses_spent, expires_too_long).", "reason"),
		requestSeries:   map[requestKey]*requestSeries{},
		backendSeries:   map[string]prometheus.Observer{},
	}
	for status := range m.statusLabels {
		m.statusLabels[status] = strconv.Itoa(status)
	}
	m.registry.MustRegister(m.requests, m.requestSeconds, m.backendSeconds, m.requestBytes, m.responseBytes,
		m.authFailures, m.cacheRequests, m.callableCalls, m.callableSeconds, m.iamFetches,
		m.throttled, m.limitFallbacks, m.presignRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// histogram has 18 buckets doubling from the first, so that one histogram
// spans from its first bucket to about 130,000 times it.
func histogram(name, help string, first float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: prometheus.ExponentialBuckets(first, 2, 18)}, labels)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Request records one finished client request.
func (m *Metrics) Request(bucket, operation string, status int, in, out int64, took time.Duration) {
	s := m.seriesOf(requestKey{bucket, operation, status})
	s.requests.Inc()
	s.seconds.Observe(took.Seconds())
	s.inBytes.Add(float64(in))
	s.outBytes.Add(float64(out))
}

// seriesOf returns the series of requests labelled by key, found once.
func (m *Metrics) seriesOf(key requestKey) *requestSeries {
	m.mu.RLock()
	s, ok := m.requestSeries[key]
	m.mu.RUnlock()
	if ok {
		return s
	}
	s = &requestSeries{
		requests: m.requests.WithLabelValues(key.bucket, key.operation, m.statusLabel(key.status)),
		seconds:  m.requestSeconds.WithLabelValues(key.operation),
		inBytes:  m.requestBytes.WithLabelValues(key.bucket),
		outBytes: m.responseBytes.WithLabelValues(key.bucket),
	}
	m.mu.Lock()
	m.requestSeries[key] = s // or another goroutine's, the same series
	m.mu.Unlock()
	return s
}

// statusLabel is status as a label value.
func (m *Metrics) statusLabel(status int) string {
	if status >= 0 && status < len(m.statusLabels) {
		return m.statusLabels[status]
	}
	return strconv.Itoa(status)
}

// Backend records the time a backend took to answer.
func (m *Metrics) Backend(bucket string, took time.Duration) {
	m.mu.RLock()
	s, ok := m.backendSeries[bucket]
	m.mu.RUnlock()
	if !ok {
		s = m.backendSeconds.WithLabelValues(bucket)
		m.mu.Lock()
		m.backendSeries[bucket] = s
		m.mu.Unlock()
	}
	s.Observe(took.Seconds())
}

// AuthFailure records a refused request.
func (m *Metrics) AuthFailure(code string) { m.authFailures.WithLabelValues(code).Inc() }

// CacheLookup records a cache hit or miss.
func (m *Metrics) CacheLookup(cache string, hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cacheRequests.WithLabelValues(cache, result).Inc()
}

// Callable records one call of a Python callable.
func (m *Metrics) Callable(name, outcome string, took time.Duration) {
	m.callableCalls.WithLabelValues(name, outcome).Inc()
	m.callableSeconds.WithLabelValues(name).Observe(took.Seconds())
}

// CallsInFlight exports inFlight(kind) for each kind as the gauge
// osp_callable_calls_in_flight{callable=kind}: calls running now, including
// those whose waiter gave up on a timeout. Call it once, before serving.
func (m *Metrics) CallsInFlight(inFlight func(kind string) int64, kinds ...string) {
	for _, kind := range kinds {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "osp_callable_calls_in_flight",
			Help:        "Calls of Python callables running now (a timed-out call counts until it returns), by callable.",
			ConstLabels: prometheus.Labels{"callable": kind},
		}, func() float64 { return float64(inFlight(kind)) }))
	}
}

// IAMFetch records one IAM token request.
func (m *Metrics) IAMFetch(err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.iamFetches.WithLabelValues(outcome).Inc()
}

// Throttled records a request refused by a request rate limit; label is an
// access key named in the configuration or "_other", never a key a client
// chose.
func (m *Metrics) Throttled(label string) { m.throttled.WithLabelValues(label).Inc() }

// LimitFallback records a decision a failure policy made for limit.
func (m *Metrics) LimitFallback(limit, policy string) {
	m.limitFallbacks.WithLabelValues(limit, policy).Inc()
}

// PresignRefused records a presigned request a presigned URL limit refused.
func (m *Metrics) PresignRefused(reason string) { m.presignRefused.WithLabelValues(reason).Inc() }

// StateStore exports the limits' state store as the gauge
// osp_limit_state_up{store}: 1 while it answers, 0 while it does not. Call
// it once, before serving; up is read at each scrape.
func (m *Metrics) StateStore(up func() (store string, reachable bool)) {
	m.registry.MustRegister(stateStoreCollector{up: up, desc: prometheus.NewDesc(
		"osp_limit_state_up", "Whether the limits' state store (memory or Redis) answered its last ping (1) or not (0).",
		[]string{"store"}, nil)})
}

// stateStoreCollector is a gauge whose label (the store, which a reload may
// change) is read with its value.
type stateStoreCollector struct {
	up   func() (string, bool)
	desc *prometheus.Desc
}

func (c stateStoreCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c stateStoreCollector) Collect(ch chan<- prometheus.Metric) {
	store, reachable := c.up()
	value := 0.0
	if reachable {
		value = 1
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, value, store)
}
