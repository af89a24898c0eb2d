"""The sources stage: release data, checksums and changelogs from GitHub, grafana.com or the embedded
snapshot, through the one HTTP client and cache."""
