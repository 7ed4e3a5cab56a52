"""Every paid Kling node's life, in one place: the library's :class:`Generation` with the node's
credentials, ledger and spend guard, run on worker threads with progress and Cancel, delivered as the
node's outputs. A node file gives only its schema and the mapping from its inputs to requests.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from comfy_api.latest import io

from ..kling_api.errors import KlingCredentialsError, KlingError
from ..kling_api.generation.life import Generation, JobResult
from ..kling_api.remote.client import DEFAULT_TIMEOUT_S, KlingClient
from ..kling_api.remote.codecs import check_request_credentials
from ..kling_api.rules.request import RequestBody
from ..kling_api.rules.validation import validate_request
from .credentials import node_credentials
from .delivery import output_path_for
from .frame_links import frames_linked
from .job_runner import run_jobs
from .ledger import node_ledger
from .progress import StatusBoard
from .spend_guard import check_before_create, queue_refusal

#: Turns a batch item's request (its images still stand-ins) into the one to send, e.g. by encoding them.
Finish = Callable[[int, RequestBody], RequestBody]


def node_generation(timeout: float = DEFAULT_TIMEOUT_S) -> Generation:
    """The generation life of a node run: the node's credentials, the ledger in ComfyUI's protected user
    folder (the same inputs and seed never pay twice) and the spend guard of Settings > Kling > Costs."""
    return Generation(KlingClient(node_credentials()), node_ledger(), check_before_create, timeout=timeout)


async def generate(unique_id: str | None, requests: Sequence[RequestBody], *, seed: Any, prompt: Any = None,
                   timeout: float = DEFAULT_TIMEOUT_S, concurrency: int = 1, finish: Finish | None = None,
                   **delivery: Any) -> io.NodeOutput:
    """``requests`` (one per task: a batch of B images is B requests) through the generation life:
    refused before anything is sent or encoded when invalid, over a spend limit or unreachable with these
    credentials; then created or resumed, waited for with progress and Cancel, downloaded, delivered.
    ``prompt`` (the node's hidden PROMPT) says whether anything reads the frames: if not, none are decoded."""
    for request in requests:
        validate_request(request)  # bad input is named first, with or without credentials
    generation = node_generation(timeout)
    note = generation.prepare(requests)

    def run_one(index: int, board: StatusBoard) -> JobResult:
        request = requests[index] if finish is None else finish(index, requests[index])
        return generation.run(request, output_path_for, seed=seed, batch_index=index,
                              should_cancel=board.should_cancel, on_status=board.reporter(index))

    return await run_jobs(unique_id, len(requests), run_one, concurrency=concurrency, note=note,
                          frames=frames_linked(prompt, unique_id), **delivery)


def queue_time_refusal(requests: Sequence[RequestBody], unique_id: str | None = None) -> str | None:
    """For ``validate_inputs``: why these requests would be refused, before anything is paid or encoded
    (validation, an access key + secret key on a new-API model, the spend guard), else None."""
    try:
        checked = [validate_request(request).request for request in requests]
    except KlingError as exc:
        return str(exc)
    refusal = _credential_refusal(checked)
    return refusal or queue_refusal(checked, unique_id)


def _credential_refusal(requests: Sequence[RequestBody]) -> str | None:
    """An access key + secret key cannot reach the new API: said at queue time. No credentials at all
    is said when the node runs (the error there says how to set them)."""
    try:
        credentials = node_credentials()
    except KlingCredentialsError:
        return None
    try:
        check_request_credentials(requests, credentials)
    except KlingCredentialsError as exc:
        return str(exc)
    return None


__all__ = ["Finish", "generate", "node_generation", "queue_time_refusal"]
