package rdb

// BlockingID is the Redis client id of the connection BlockOn gave Fetch (0
// before it connects, or without BlockOn), for tests that ask Redis about it.
func (r *Client) BlockingID() int64 {
	if r.blocking == nil {
		return 0
	}
	return r.blocking.id.Load()
}
