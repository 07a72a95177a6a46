"""`python -m gpu_host.models add`: a user's YOLO export, checked and declared in one command.

`source` reads the file (converting a TFLite file once through the conversion venv),
`graph` checks its inputs, outputs and task layout, `batch` makes a fixed batch of 1 dynamic
where the graph allows it, `install` writes the file and its `user_models.json` entry
atomically; `command` strings them together. Every refusal is an `AddError` whose message
says why.
"""

from gpu_host.models.add.errors import AddError

__all__ = ["AddError"]
