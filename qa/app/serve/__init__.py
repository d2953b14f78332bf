"""`tsqa serve`: the QA service (FastAPI on uvicorn, the tsqa[serve] extra) that runs checks of configured roots."""
