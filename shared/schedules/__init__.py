"""Timer-driven work: backup schedules (cron due slots), retention, sandbox lifetime."""
