"""nginx in front of the backend: the site template and its renderer."""
