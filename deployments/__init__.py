"""Deployments, schedules and the `eventdesk` command-line entry point."""
