"""Soak: 50 generations through the library's jobs + ledger path, 4 at a time, against the in-process
emulator on loopback while faults are switched on at random (seeded, bounded in count and time).
A job that fails is queued again with the same seed, as a user would, and must resume rather than pay.
Ends with 50 videos, exactly 50 tasks created and 0 duplicates, and prints those counts."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient
from kling_api.remote.download import looks_like_mp4
from kling_api.emulator import Emulator
from kling_api.errors import KlingError, KlingValidationError
from kling_api.generation.life import JobResult, run_image_to_video
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.request import ImageToVideoRequest
from kling_api.remote.transport import RetryPolicy
from test_client import IMAGE

pytestmark = pytest.mark.slow

JOBS = 50
CONCURRENCY = 4
SEED = 20261124
MAX_FAULTS = 40
TIME_LIMIT_S = 90.0
API_KEY = "soak-key-0123456789"
#: Counter switches armed one at a time; "delay" is a burst of slow answers (client read timeouts).
FAULTS = ("rate_limit_creates", "drop_after_create", "server_error_polls", "malformed_json_polls",
          "drop_downloads", "non_mp4_downloads", "content_policy_creates", "balance_depleted_creates", "delay")


class Injector(threading.Thread):
    """Arms one random fault every 0.1-0.4 s until MAX_FAULTS, the time limit, or ``done``."""

    def __init__(self, emu: Emulator, rng: random.Random, done: threading.Event, deadline: float) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.emu, self.rng, self.done, self.deadline = emu, rng, done, deadline
        self.armed: Counter[str] = Counter()

    def run(self) -> None:
        while sum(self.armed.values()) < MAX_FAULTS and not self.done.is_set() and time.monotonic() < self.deadline:
            if self.done.wait(self.rng.uniform(0.1, 0.4)):
                return
            fault = self.rng.choice(FAULTS)
            if fault == "delay":
                self.emu.configure(delay_seconds=1.2)  # over the client's 0.8 s read timeout
                self.done.wait(self.rng.uniform(0.3, 1.0))
                self.emu.configure(delay_seconds=0)
            elif getattr(self.emu.config, fault) == 0:  # armed only when the last one was used up
                changes = {fault: 1}
                if fault == "server_error_polls":
                    changes["server_error_code"] = self.rng.choice((5000, 5001, 5002))
                self.emu.configure(**changes)
            else:
                continue
            self.armed[fault] += 1
        self.emu.configure(delay_seconds=0)


def test_soak_50_tasks_with_random_faults_no_duplicates(tmp_path):
    rng = random.Random(SEED)
    started = time.monotonic()
    deadline = started + TIME_LIMIT_S
    with Emulator("127.0.0.1", 0, api_keys=[API_KEY], max_height=64, submitted_seconds=0.05,
                  processing_seconds=0.2) as emu:
        assert emu.url.startswith("http://127.0.0.1:")  # loopback only
        client = KlingClient(Credentials(api_key=Secret(API_KEY), source="soak"), emu.url, timeout=(2.0, 0.8),
                             retry=RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.3, jitter=0.25))
        ledger = TaskLedger(tmp_path / "ledger.sqlite3")
        out = tmp_path / "videos"
        requeues: Counter[str] = Counter()
        lock = threading.Lock()

        def job(i: int) -> JobResult:
            request = ImageToVideoRequest(model_name="kling-v2-5-turbo", image=IMAGE, prompt=f"soak job {i}")
            for attempt in range(1, 11):
                try:
                    return run_image_to_video(client, request, out / f"job{i:02d}.mp4", ledger=ledger, seed=i,
                                              timeout=30, should_cancel=lambda: time.monotonic() > deadline)
                except KlingValidationError:
                    raise
                except KlingError as exc:  # queue it again with the same seed, as a user would
                    if attempt == 10 or time.monotonic() > deadline:
                        raise
                    with lock:
                        requeues[type(exc).__name__] += 1
                    time.sleep(0.1)
            raise AssertionError("unreachable")

        done = threading.Event()
        injector = Injector(emu, rng, done, deadline)
        injector.start()
        try:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                results = list(pool.map(job, range(JOBS)))
        finally:
            done.set()
            injector.join(5)
        elapsed = time.monotonic() - started
        tasks = emu.created_tasks()
        left = emu.config

    external_ids = Counter(t["task_info"]["external_task_id"] for t in tasks)
    duplicates = sum(n - 1 for n in external_ids.values()) + (len(tasks) - len({t["task_id"] for t in tasks}))
    videos = [r.video_path for r in results if r.video_path.is_file() and looks_like_mp4(r.video_path)]
    consumed = {f: n - (getattr(left, f) if f != "delay" else 0) for f, n in injector.armed.items()}
    print(f"\nsoak: {len(videos)} videos, {len(tasks)} tasks created, {duplicates} duplicates; "
          f"{sum(consumed.values())} faults hit ({dict(sorted(consumed.items()))}); "
          f"re-queued {sum(requeues.values())} times ({dict(requeues)}); {elapsed:.1f} s")
    assert len(videos) == JOBS
    assert len(tasks) == JOBS and duplicates == 0
    assert {r.task.task_id for r in results} == {t["task_id"] for t in tasks}
    assert sum(consumed.values()) >= 10, consumed  # the faults really happened
    rows = ledger.entries(limit=1000)
    assert len(rows) == JOBS and all(r.status == "succeed" and r.video_path for r in rows)
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    assert elapsed < TIME_LIMIT_S
