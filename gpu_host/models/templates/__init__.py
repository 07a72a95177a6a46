"""Files the repository generator copies into a Triton model repository (not imported here)."""
