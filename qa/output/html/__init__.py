"""The HTML report and the reports index, rendered from Report models and the evidence written beside them."""
