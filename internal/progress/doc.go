// Package progress turns the output of the downloader and of rclone into progress
// updates, and publishes them on Redis as the events of contract section 3.
//
// It owns two things: the parsers (Downloader for yt-dlp and bare "NN.N%" lines,
// ParseRclone for rclone's JSON log), which read one output line at a time and never
// block, and the Publisher, which writes events to the channel "dl:progress" and the
// hash "dl:task:<taskId>", throttled per task by a TaskPublisher.
//
// It does not run processes, read their pipes or split their output into lines (that
// is the process package's work), and it does not decide when a task changes stage
// (the pipeline calls Stage, Update and Finish).
package progress
