"""One file per ledger schema revision, oldest first."""
