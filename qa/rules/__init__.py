"""The rules a release is judged by: the finding-code catalogue, findings, release specs and spec detection."""
