// Package egress owns the guard proxy through which the downloader reaches the
// network: a forward HTTP proxy on 127.0.0.1 that resolves each destination
// itself, refuses loopback, private, link-local, shared, multicast, reserved and
// cloud-metadata addresses (unless an allowed CIDR holds them), and connects to
// the very address it checked, so neither a redirect to http://localhost/ nor a
// DNS answer that changes between check and connect reaches an internal service.
//
// Each request resolves its destination once. A name whose addresses are all
// forbidden is refused (403 to the client, with the reason, and OnRefuse); of a
// name with some addresses allowed and some forbidden, only the allowed ones are
// dialed. The dialer checks the address of every socket once more before it
// connects, whatever led to the dial.
//
// It forwards plain HTTP requests in absolute form (GET http://host/path) and
// tunnels CONNECT host:port (HTTPS). One Proxy serves one task: Start it, give
// the child Env(p.URL()) and the proxy URL, Close it when the child has ended.
//
// It does not own the downloader, its environment or its arguments (package
// download does), the allow list's configuration (package config), or where a
// refusal is written (the caller's OnRefuse). It checks addresses, not host
// names or ports: download.allowed_hosts, checked on the job's URL, stays the
// caller's business.
package egress
