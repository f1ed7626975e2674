// Package download runs the operator's downloader for one task and names
// what it made.
//
// It owns the argv template (download.command with {url}, {dir} and
// {task_id}), running it through package process in the task's folder with a
// minimal environment, and finding the single top-level folder the downloader
// created. It does not parse progress, write logs or decide about retries:
// the caller gets every output line and a *process.ExitError on failure.
package download
