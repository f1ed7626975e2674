package egress

// Env returns the environment that sends a child's HTTP, HTTPS and other
// traffic through the proxy at proxyURL: HTTP_PROXY, HTTPS_PROXY and ALL_PROXY,
// upper and lower case (curl reads only http_proxy in lower case, Python and Go
// read either), as "NAME=value" items. NO_PROXY and no_proxy are set empty so
// that a value inherited from elsewhere cannot exempt a host (an empty one
// exempts none, in Python, Go and curl alike); put these items after any others
// so they win.
func Env(proxyURL string) []string {
	var env []string
	for _, name := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"} {
		env = append(env, name+"="+proxyURL)
	}
	for _, name := range []string{"http_proxy", "https_proxy", "all_proxy"} {
		env = append(env, name+"="+proxyURL)
	}
	return append(env, "NO_PROXY=", "no_proxy=")
}
