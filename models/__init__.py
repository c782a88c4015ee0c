"""The pure domain of eventdesk: no sockets, sessions, files, environment or clock."""
