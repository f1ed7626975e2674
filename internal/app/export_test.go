package app

// MetricsAddr is the address /metrics, /healthz and /readyz listen on ("" when
// metrics.listen is empty), for tests that give metrics.listen with port 0.
func (a *App) MetricsAddr() string {
	if a.server == nil {
		return ""
	}
	return a.server.Addr()
}
