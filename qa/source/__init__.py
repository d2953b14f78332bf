"""Where a release's bytes come from: the ReleaseSource interface and its implementations."""
