package app

import (
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/coursedl/worker/internal/config"
)

// NewLogger builds the worker's own logger: stderr (for journald and docker, in
// logs.format), logs/worker-out.log (logs.level and up) and logs/worker-error.log
// (warnings and errors), both JSON and rotated by lumberjack. The returned function
// flushes and closes the files.
func NewLogger(c config.Logs) (*zap.Logger, func(), error) {
	return newLogger(c, zapcore.Lock(os.Stderr))
}

// newLogger is NewLogger writing what goes to stderr to stderr instead (tests).
func newLogger(c config.Logs, stderr zapcore.WriteSyncer) (*zap.Logger, func(), error) {
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return nil, nil, err
	}
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, nil, err
	}
	fileEnc := zapcore.NewJSONEncoder(encoderConfig())
	var stderrEnc zapcore.Encoder
	if c.Format == "json" {
		stderrEnc = zapcore.NewJSONEncoder(encoderConfig())
	} else {
		ec := encoderConfig()
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		stderrEnc = zapcore.NewConsoleEncoder(ec)
	}
	rotate := func(name string) *lumberjack.Logger {
		return &lumberjack.Logger{
			Filename:   filepath.Join(c.Dir, name),
			MaxSize:    c.MaxSizeMB,
			MaxBackups: c.MaxBackups,
			MaxAge:     c.MaxAgeDays,
			Compress:   c.Compress,
		}
	}
	out, errFile := rotate("worker-out.log"), rotate("worker-error.log")
	core := zapcore.NewTee(
		zapcore.NewCore(stderrEnc, stderr, level),
		zapcore.NewCore(fileEnc, zapcore.AddSync(out), level),
		zapcore.NewCore(fileEnc, zapcore.AddSync(errFile), zapcore.WarnLevel),
	)
	log := zap.New(core, zap.AddCaller(), zap.ErrorOutput(stderr))
	closeFn := func() {
		_ = log.Sync()
		_ = out.Close()
		_ = errFile.Close()
	}
	return log, closeFn, nil
}

func encoderConfig() zapcore.EncoderConfig {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder
	return ec
}
