package job

import (
	"bytes"
	"encoding/json"
)

// wire is a job as the web app writes it (contract section 1), in its field
// order; orderId is left out when the row has no order.
type wire struct {
	TaskID    int64  `json:"taskId"`
	Email     string `json:"email"`
	CourseURL string `json:"courseUrl"`
	OrderID   *int64 `json:"orderId,omitempty"`
}

// Of is the job of task taskID whose download_tasks row holds r: the job the
// web app pushes for it.
func Of(taskID int64, r Row) Job {
	return Job{TaskID: taskID, Email: r.Email, CourseURL: r.CourseURL, OrderID: r.OrderID}
}

// Payload renders j exactly as the web app pushes it: compact JSON in the
// contract's field order, no HTML escaping, orderId left out when nil.
// workerctl enqueue and the reconciler push what it returns.
func (j Job) Payload() (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wire(j)); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}
