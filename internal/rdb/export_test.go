package rdb

// BlockingID is the Redis client id of the connection BlockOn gave Fetch (0
// before it connects, or without BlockOn), for tests that ask Redis about it.
func (r *Client) BlockingID() int64 {
	if r.blocking == nil {
		return 0
	}
	return r.blocking.id.Load()
}

// AckFetchesWaiting is how many AckFetch calls wait for a batch under way.
func (r *Client) AckFetchesWaiting() int {
	r.acks.mu.Lock()
	defer r.acks.mu.Unlock()
	if !r.acks.leading {
		return 0
	}
	return len(r.acks.waiting)
}
