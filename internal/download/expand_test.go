package download

import (
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	job := Job{TaskID: 17, URL: "https://www.udemy.com/course/go/", Dir: "/srv/staging/task-17"}
	tests := []struct {
		name     string
		template []string
		job      Job
		want     []string
	}{
		{"plain", []string{"yt-dlp", "{url}"}, job, []string{"yt-dlp", "https://www.udemy.com/course/go/"}},
		{"inside an element", []string{"yt-dlp", "-o{dir}/%(title)s.%(ext)s", "--id={task_id}"}, job,
			[]string{"yt-dlp", "-o/srv/staging/task-17/%(title)s.%(ext)s", "--id=17"}},
		{"several in one element", []string{"{dir}/{task_id}/{task_id}"}, job,
			[]string{"/srv/staging/task-17/17/17"}},
		{"shell syntax stays one element", []string{"dl", "{url}"},
			Job{URL: "https://x/$(touch x); rm -rf / `id` a b|c"},
			[]string{"dl", "https://x/$(touch x); rm -rf / `id` a b|c"}},
		{"a dir with spaces", []string{"dl", "--out", "{dir}"}, Job{Dir: "/srv/my staging/task-1"},
			[]string{"dl", "--out", "/srv/my staging/task-1"}},
		{"placeholders in values are not expanded again", []string{"{url}", "{dir}"},
			Job{TaskID: 3, URL: "https://x/{dir}/{task_id}", Dir: "/d/{url}"},
			[]string{"https://x/{dir}/{task_id}", "/d/{url}"}},
		{"unknown braces kept", []string{"{title}", "{}", "{URL}"}, job, []string{"{title}", "{}", "{URL}"}},
		{"empty elements kept", []string{"dl", "", "{url}"}, Job{URL: ""}, []string{"dl", "", ""}},
		{"empty template", nil, job, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			template := slices.Clone(tt.template)
			got := Expand(tt.template, tt.job)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Expand = %q, want %q", got, tt.want)
			}
			if !slices.Equal(tt.template, template) {
				t.Errorf("Expand changed its template to %q", tt.template)
			}
		})
	}
}
