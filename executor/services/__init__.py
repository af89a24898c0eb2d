"""Service managers (supervisord, systemd), service definitions rendered per version, and the version switch."""
