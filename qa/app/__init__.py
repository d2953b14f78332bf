"""The application: the command line, the pipeline that joins the layers, evidence pictures and the demo."""
