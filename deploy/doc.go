// Package deploy holds no code: its folder holds the deployment files (the
// systemd unit, the Dockerfile, the compose file, the contract schema and
// README.md), and its tests check them with the tools that read them:
// systemd-analyze and docker-compose.
package deploy
