"""Getting back: rollback points (backups, restore), rollback, `--last-run`, retention."""
