"""One process: the composition root, the shared service and queue, access rules, REST API and web UI."""
