"""One generation's life, from validation to a downloaded video, shared by the nodes, the CLI and batch."""
