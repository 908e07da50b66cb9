"""Use cases: what callflow does for a caller, an agent, a manager or a job, over the adapters."""
