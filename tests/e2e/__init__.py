"""End-to-end tests: a real desk driven through a real browser."""
