"""Talking to Kling: credentials, transport and retries, the client, task objects, downloads, the ledger."""
