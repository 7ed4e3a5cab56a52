"""Kling AI image-to-video: a client library with no ComfyUI or torch in it.

Usable on its own (``python -m kling_api``); the ComfyUI nodes in ``nodes/`` are thin glue over it.
"""
from .remote.auth import Credentials, load_credentials
from .rules.capabilities import capability_table
from .remote.client import KlingClient
from .errors import (KlingAPIError, KlingCancelled, KlingCredentialsError, KlingDownloadError, KlingError,
                     KlingTaskFailed, KlingTimeout, KlingValidationError)
from .generation.life import JobResult, finish_task, run_image_to_video
from .rules.request import ImageToVideoRequest
from .remote.tasks import StatusUpdate, Task
from .rules.validation import validate

__version__ = "0.1.0"

__all__ = [
    "Credentials", "load_credentials", "capability_table", "KlingClient", "KlingAPIError", "KlingCancelled",
    "KlingCredentialsError", "KlingDownloadError", "KlingError", "KlingTaskFailed", "KlingTimeout",
    "KlingValidationError", "JobResult", "finish_task", "run_image_to_video", "ImageToVideoRequest",
    "StatusUpdate", "Task", "validate",
]
