package console

import "context"

// SampleNow takes one sample of the queue depth, as Run does every
// SampleEvery.
func (c *Console) SampleNow(ctx context.Context) error { return c.sample(ctx) }
