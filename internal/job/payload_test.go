package job

import "testing"

func TestPayloadIsTheWebAppsJob(t *testing.T) {
	order := int64(12)
	tests := []struct {
		name string
		j    Job
		want string
	}{
		{"with order", Of(17, Row{Email: "buyer@example.com", CourseURL: "https://www.udemy.com/course/go/?a=1&b=<c>", OrderID: &order}),
			`{"taskId":17,"email":"buyer@example.com","courseUrl":"https://www.udemy.com/course/go/?a=1&b=<c>","orderId":12}`},
		{"no order", Of(18, Row{Email: "b@example.com", CourseURL: "https://www.udemy.com/course/x/"}),
			`{"taskId":18,"email":"b@example.com","courseUrl":"https://www.udemy.com/course/x/"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.j.Payload()
			if err != nil || got != tt.want {
				t.Fatalf("Payload() = %s, %v; want %s", got, err, tt.want)
			}
			back, err := Decode([]byte(got), []string{"www.udemy.com"})
			if err != nil {
				t.Fatalf("the worker's decoder refuses it: %v", err)
			}
			if back.TaskID != tt.j.TaskID || back.Email != tt.j.Email || back.CourseURL != tt.j.CourseURL ||
				(back.OrderID == nil) != (tt.j.OrderID == nil) {
				t.Fatalf("decoded %+v from %+v", back, tt.j)
			}
		})
	}
}
