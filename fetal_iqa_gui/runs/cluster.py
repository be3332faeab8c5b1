"""Scoring an archive on a Ray cluster: the per-case work of `fetal-iqa score`, spread over workers.

Each worker (a Ray actor) loads the model once, then takes cases one at a time: it reads the
sweep from storage that every node sees (paths travel through the scheduler, never pixels),
scores it and writes the case's outputs itself with `batch.write_case_outputs`, as one process
does, so the outputs are the same bytes. Only summary rows or a one-line error come back. The
driver plans the run and rebuilds the summary with the same `batch` functions; what was finished
is known from the markers alone, so a driver killed mid-run loses nothing that was finished.

Ray is optional (`pip install 'fetal-iqa[cluster]'`) and imported only when a run starts.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..base.errors import FetalIqaError, ScoringError, name_choices
from ..review.export import ModelInfo

if TYPE_CHECKING:
    from ..engine.scoring import Engine

INSTALL_HINT = "pip install 'fetal-iqa[cluster]'"
DEFAULT_THREADS = 4  # CPU threads per worker: one model's matrix products use about this many well
START_PATIENCE_S = 60  # say so when no worker has started by then (the cluster may have no room)


class RayMissing(FetalIqaError):
    """`--ray` on a Python without Ray."""

    doing = "Cannot use"
    exit_code = 2

    def _where(self) -> str:
        return "--ray"


class ClusterError(FetalIqaError):
    """A cluster that cannot be reached, has no room for a worker, or lost every worker."""

    doing = "Cannot score"

    def _where(self) -> str:
        return "on the Ray cluster"


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says once its model is loaded (or why it could not load it)."""

    model: ModelInfo | None
    variant: str = ""  # how the model runs there (device, precision)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    exit_code: int = 0

    def loaded_model(self) -> ModelInfo:
        """The model of a worker that loaded one (what `RayPool.model_info` returns: an error stops the run)."""
        assert self.model is not None, self.error
        return self.model


@dataclass(frozen=True)
class CaseResult:
    """One case done on a worker: its summary rows, or the error that stopped it."""

    path: Path
    rows: list[dict] | None = None
    threshold: float = 0.0
    error: str = ""
    exit_code: int = 0
    stops_run: bool = False  # the model gives no usable scores: it would fail every case


class CaseScorer:
    """A worker: the model loaded once, then cases scored and written one after another."""

    def __init__(self, spec, settings, use_cache: bool, first_case: Path | None = None,
                 threshold: float | None = None, words: dict[str, str] | None = None):
        from ..case.loading import load_case
        from ..engine.scoring import load_engine
        name_choices(words or {})  # errors said as the driver's front door says them
        self.use_cache, self.threshold = use_cache, threshold
        self.engine: Engine | None = None
        self.failure: FetalIqaError | None = None
        try:
            # OpenVINO's int8 of a real model: calibrated on the run's first case, as in one process
            # (the cache key is the same; one worker converts, the others read its entry)
            self.engine = load_engine(spec, settings,
                                      first_case=None if first_case is None else (lambda: load_case(first_case)))
        except FetalIqaError as error:  # said by `describe`: an actor that dies in __init__ tells nothing
            self.failure = error

    def describe(self) -> WorkerInfo:
        if self.failure:
            return WorkerInfo(None, error=str(self.failure), exit_code=self.failure.exit_code)
        assert self.engine is not None  # loaded: there was no failure
        model = self.engine.model
        return WorkerInfo(ModelInfo.of(model), self.engine.variant, list(model.warnings))

    def score(self, case) -> CaseResult:
        from .job import CaseJob
        assert self.engine is not None  # a worker whose model failed is given no cases
        try:
            result = CaseJob(self.engine, case.path, self.threshold, self.use_cache, plan=case).run()
        except FetalIqaError as error:
            return CaseResult(case.path, error=str(error), exit_code=error.exit_code,
                              stops_run=isinstance(error, ScoringError))
        return CaseResult(case.path, result.rows, result.scored.threshold)


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissing(None, "Ray is not installed", f"Install it with: {INSTALL_HINT}") from None
    return ray


class RayPool:
    """Workers on a local Ray started for the run or on a cluster joined at `address`; a context manager.

    A Ray this process already runs is used as it is (and left running). `workers` defaults to as
    many as the cluster's CPUs (GPUs with `gpu`) hold; each gets `settings.threads` CPUs
    (default `DEFAULT_THREADS`, at most the cluster's) or, with `gpu`, one GPU.
    """

    def __init__(self, spec, settings, address: str | None = None, workers: int | None = None,
                 gpu: bool = False, use_cache: bool = True, say: Callable[[str], None] = lambda text: None,
                 first_case: Path | None = None, threshold: float | None = None, words: dict[str, str] | None = None):
        self.ray = import_ray()
        self.spec, self.settings, self.address, self.requested = spec, settings, address, workers
        self.first_case, self.threshold, self.words = first_case, threshold, words
        self.gpu, self.use_cache, self.say = gpu, use_cache, say
        self.started = False
        self.starting: dict = {}  # describe() reference -> worker not yet ready
        self.idle: list = []
        self.actors: list = []
        self.info: WorkerInfo | None = None

    def __enter__(self) -> "RayPool":
        ray = self.ray
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = f"at '{self.address}'" if self.address else "on this computer"
                raise ClusterError(None, f"Ray did not start or was not reached {where} ({_gist(error)})",
                                   "Check the address (`ray status` on the head node shows it).") from None
            self.started = True
        try:
            self._start_workers()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()

    @property
    def size(self) -> int:
        return len(self.actors)

    def _start_workers(self) -> None:
        resources = self.ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        threads = self.settings.threads or max(1, min(DEFAULT_THREADS, cpus))
        if self.gpu and gpus < 1:
            raise ClusterError(None, "it has no GPU", "Give --device cpu, or join a cluster with GPUs.")
        if not self.gpu and threads > cpus:
            raise ClusterError(None, f"a worker asks for {threads} CPUs and the cluster has {cpus}",
                               "Give fewer --threads.")
        count = self.requested or max(1, gpus if self.gpu else cpus // threads)
        options = {"num_gpus": 1, "num_cpus": 1} if self.gpu else {"num_cpus": threads}
        settings = replace(self.settings, threads=threads)
        worker = self.ray.remote(CaseScorer).options(**options)
        self.actors = [worker.remote(self.spec, settings, self.use_cache, self.first_case, self.threshold,
                                     self.words) for _ in range(count)]
        self.starting = {actor.describe.remote(): actor for actor in self.actors}

    def model_info(self) -> WorkerInfo:
        """The first worker's model, once loaded; its load error, if it failed, stops the run."""
        waited = 0.0
        while self.info is None:
            ready, _ = self.ray.wait(list(self.starting), num_returns=1, timeout=START_PATIENCE_S)
            if not ready:
                waited += START_PATIENCE_S
                self.say(f"note: no worker has started after {waited:.0f} s; the cluster may have no room for "
                         "one (`ray status` shows what it has).")
                continue
            self._take_ready(ready[0])
        return self.info

    def score(self, cases: list) -> Iterator[CaseResult]:
        """Each case scored and written by some worker; results as they arrive, in any order.
        A worker lost on the way (its node gone, out of memory) fails its case, not the run."""
        self.model_info()
        todo = deque(cases)
        running: dict[Any, tuple[Any, Any]] = {}  # ray's reference to a result -> (its worker, its case)
        while todo or running:
            while self.idle and todo:
                actor, case = self.idle.pop(), todo.popleft()
                running[actor.score.remote(case)] = (actor, case)
            if not running and not self.starting:
                raise ClusterError(None, f"no worker is left and {len(todo)} cases are not done",
                                   "Run the same command again to score them.")
            ready, _ = self.ray.wait(list(running) + list(self.starting), num_returns=1)
            if ready[0] in self.starting:
                self._take_ready(ready[0])
                continue
            actor, case = running.pop(ready[0])
            try:
                result = self.ray.get(ready[0])
            except self.ray.exceptions.RayError as error:
                self.actors.remove(actor)
                yield CaseResult(case.path, error=f"The worker scoring '{case.path.name}' was lost: "
                                 f"{_gist(error)}", exit_code=1)
                continue
            self.idle.append(actor)
            yield result

    def _take_ready(self, reference) -> None:
        actor = self.starting.pop(reference)
        try:
            info = self.ray.get(reference)
        except self.ray.exceptions.RayError as error:
            self.actors.remove(actor)
            self.say(f"note: a worker did not start: {_gist(error)}")
            return
        if info.error and self.info is None:  # the model does not load: it would not load on the others
            raise _WorkerFailed(info.error, info.exit_code)
        if info.error:  # loaded elsewhere: this node lacks something (a file, a GPU)
            self.actors.remove(actor)
            self.say(f"note: a worker did not start: {info.error}")
            return
        if self.info is None:
            self.info = info
        elif info.model.identity != self.info.loaded_model().identity:  # another file at that path on its node
            self.actors.remove(actor)
            self.ray.kill(actor)
            self.say(f"note: a worker loaded another model ({info.model.name}); it is not used.")
            return
        self.idle.append(actor)


class _WorkerFailed(FetalIqaError):
    """A worker's own error (a model that does not load), said as the worker said it."""

    def __init__(self, message: str, exit_code: int):
        self.exit_code = exit_code
        super().__init__(None, message)

    def compose(self) -> str:
        return self.problem


def _gist(error: BaseException) -> str:
    """The last line of an error's text: where Ray puts the cause, after the remote traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
