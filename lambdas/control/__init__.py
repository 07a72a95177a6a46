"""The control API: FastAPI app (uvicorn locally, Mangum in Lambda), auth, the four routes."""
