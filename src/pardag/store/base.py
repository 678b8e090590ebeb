"""The run store's one interface: what a run, a step attempt and an event look like on disk.

Every backend (SQLite, PostgreSQL) implements ``Store`` and passes the same conformance suite
(``tests/store/``). The runner writes through ``write``, one transaction per call, so that a
group of completions costs one commit (group commit); everything else reads.

Values are plain: times are ``time.time()`` floats, JSON documents are already encoded
(``*_json`` fields hold text) so that a backend never guesses how to serialise a step's output.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from pardag.errors import StoreError
from pardag.store.sealed import SecretInfo
from pardag.store.stats import OrgStats
from pardag.store.tenancy import StoredWorkflow, TokenRecord
from pardag.store.triggers import TriggerRecord

__all__ = [
    "APPROVED",
    "REJECTED",
    "Answer",
    "CacheEntry",
    "EventListener",
    "EventRecord",
    "LogRecord",
    "OrgStats",
    "RunRecord",
    "RunUpdate",
    "SecretInfo",
    "StepRecord",
    "Store",
    "StoreError",
    "StoredWorkflow",
    "TokenRecord",
    "TriggerRecord",
    "mask_url",
]


@dataclass
class RunRecord:
    """One run. ``status`` is a ``RunStatus`` value (``running``, ``paused``, ``succeeded``...).

    ``definition`` is a snapshot of what ran: the workflow file's text (``definition_format``
    names its format: ``native``, ``nodegraph``, ...) or, for a workflow built in Python, an
    empty string with ``definition_format="python"``; ``source`` is the file's path, or the
    ``module:attribute`` a Python workflow can be imported from (None if unknown). ``owner`` is
    ``host:pid`` of the process running it, so that resuming can tell a dead run from a live one.

    The run queue's fields (docs/server.md): ``org`` is the organisation the run belongs to;
    ``trigger_json`` what started it (a webhook's body, say; ``{}`` for a person); ``worker``
    the worker that claimed it last, ``lease_until`` until when its claim holds (None: no
    worker holds it, as for a run started by ``pardag run``), ``claimed_at`` when it was
    claimed last and ``claims`` how many times (more than one: taken over from a dead worker).
    """

    run_id: str
    workflow: str
    status: str
    created_at: float
    definition: str = ""
    definition_format: str = "python"
    definition_hash: str = ""
    source: str | None = None
    settings_json: str = "{}"
    params_json: str = "{}"
    finished_at: float | None = None
    error: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None
    org: str = "default"
    trigger_json: str = "{}"
    worker: str | None = None
    lease_until: float | None = None
    claimed_at: float | None = None
    claims: int = 0
    cancel_requested: str | None = None
    cancel_requested_at: float | None = None


@dataclass
class RunUpdate:
    """Fields of a run to change in a ``write``; None leaves a field as it is."""

    run_id: str
    status: str | None = None
    finished_at: float | None = None
    error: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None


@dataclass
class StepRecord:
    """One attempt of one step; (run_id, step_id, attempt) is its key and ``write`` upserts it.

    ``state`` is a ``StepState`` value. ``output_json`` is the output as JSON text, None when
    there is none or it could not be stored (then ``output_stored`` is False and the run kept
    it in memory only). ``cached`` marks an output taken from the cache instead of running.
    ``position`` is the step's place in the workflow's declaration (0 first), so that a
    recorded run lists its steps in the order they were written (None in older records).
    ``processes`` names the processes the attempt started (a shell step's process, its
    worker process), space-separated ``pid:boot.start`` (``pardag.stepprocs``), so that
    ``resume`` can make sure none of them still runs.
    """

    run_id: str
    step_id: str
    attempt: int
    state: str
    executor: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    output_json: str | None = None
    output_stored: bool = True
    error: str | None = None
    traceback: str | None = None
    reason: str | None = None
    cached: bool = False
    position: int | None = None
    processes: str | None = None


@dataclass
class EventRecord:
    """One event of a run, numbered ``seq`` from 1 within the run (the order they happened).

    ``gseq`` is its number across every run, given by the store when it commits the event
    (None before; ``store.feed``); it takes no part in comparisons, as a writer never has it.
    """

    run_id: str
    seq: int
    at: float
    kind: str
    step: str | None = None
    attempt: int = 0
    data_json: str = "{}"
    gseq: int | None = field(default=None, compare=False)


@dataclass
class LogRecord:
    """A piece of one step attempt's log: what it wrote to ``stream`` (``stdout``, ``stderr``
    or ``log``, for logging records and pardag's own notes), numbered ``seq`` from 1 within
    the attempt. (run_id, step_id, attempt, seq) is its key; the pieces in ``seq`` order are
    the attempt's log as it was written."""

    run_id: str
    step_id: str
    attempt: int
    seq: int
    stream: str
    text: str


APPROVED = "approved"
"""``Answer.decision`` of an approval that was given."""
REJECTED = "rejected"
"""``Answer.decision`` of an approval that was refused (the step fails with the reason)."""


@dataclass
class Answer:
    """A person's answer to an approval step: ``decision`` is ``APPROVED`` or ``REJECTED``."""

    run_id: str
    step_id: str
    decision: str
    value_json: str = "null"
    reason: str | None = None
    answered_at: float = 0.0


@dataclass
class CacheEntry:
    """A stored successful output under a cache key; ``expires_at`` None never expires."""

    key: str
    output_json: str
    stored_at: float
    expires_at: float | None = None
    run_id: str | None = None
    step_id: str | None = None


class EventListener(Protocol):
    """Wakes a reader when events are committed (``Store.listen``)."""

    def wait(self, timeout: float) -> set[str]:
        """The runs with new events committed since the last call, waiting up to ``timeout``
        seconds for one; ``{"*"}`` when any run may have some. StoreError when the
        connection it listens on broke (then it listens again at the next call)."""
        ...

    def close(self) -> None:
        """Stop listening; idempotent."""
        ...


class Store(ABC):
    """A run store. Thread-safe: the runner writes from one thread while others read.

    ``url`` is how to reach it again, with any password masked (for messages).
    """

    url: str = ""

    # -- writing ------------------------------------------------------------------------------

    @abstractmethod
    def create_run(self, run: RunRecord) -> None:
        """Record a new run (committed before this returns). A duplicate id is a StoreError."""

    @abstractmethod
    def write(
        self,
        *,
        runs: Sequence[RunUpdate] = (),
        steps: Sequence[StepRecord] = (),
        events: Sequence[EventRecord] = (),
        logs: Sequence[LogRecord] = (),
    ) -> None:
        """Apply all of it in ONE transaction, committed durably before this returns.

        Steps are upserted by key (the last record of a key in ``steps`` wins); an event whose
        (run_id, seq) is already recorded, a log piece whose key is, or a record of a run never
        created, is a StoreError and nothing of the call is applied. A RunUpdate of a run that
        does not exist is too.
        """

    @abstractmethod
    def put_answer(self, answer: Answer) -> None:
        """Record the answer to an approval step (replacing an earlier one), committed."""

    @abstractmethod
    def put_cache(self, entry: CacheEntry) -> None:
        """Store (or replace) a cached output, committed."""

    # -- reading ------------------------------------------------------------------------------

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or with this unique id prefix (at least 6 characters).

        None when nothing matches (a shorter prefix never matches); a prefix matching several
        runs is a StoreError naming them.
        """

    @abstractmethod
    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        org: str | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        """Runs matching every filter given, newest (``created_at``, then id) first.

        ``since`` is inclusive and ``until`` exclusive (``since <= created_at < until``), so
        consecutive windows never count a run twice; ``limit <= 0`` means no limit. ``org``
        keeps one organisation's runs; ``before`` (``created_at``, ``run_id``) those listed
        after that run, so that pages never skip or repeat a run.
        """

    @abstractmethod
    def get_steps(self, run_id: str) -> list[StepRecord]:
        """Every attempt of every step of the run, by step then attempt."""

    @abstractmethod
    def get_events(self, run_id: str, step: str | None = None, after: int = 0) -> list[EventRecord]:
        """The run's events (only ``step``'s when given) numbered above ``after``, in ``seq``
        order; ``after`` lets a follower read only what is new."""

    @abstractmethod
    def org_events(self, org: str, after: int = 0, limit: int = 500) -> list[EventRecord]:
        """Up to ``limit`` events of ``org``'s runs whose ``gseq`` is above ``after``, in
        ``gseq`` order: what ``GET /api/events`` follows."""

    @abstractmethod
    def last_gseq(self) -> int:
        """The highest ``gseq`` given so far (0: none): where a page that has just read the
        store starts following ``GET /api/events``, so that it misses nothing after."""

    def listen(self) -> EventListener | None:
        """A listener told when any process commits events, or None: readers poll."""
        return None

    @abstractmethod
    def get_logs(
        self, run_id: str, step_id: str, after: tuple[int, int] = (0, 0)
    ) -> list[LogRecord]:
        """The log of step ``step_id`` of the run, every attempt, in (attempt, seq) order;
        only the pieces after ``after`` (an (attempt, seq)) when given, so that a follower
        reads only what is new."""

    @abstractmethod
    def step_durations(self, workflow: str, runs: int = 10) -> dict[str, float]:
        """Each step's mean duration in seconds over ``workflow``'s latest ``runs`` runs, from
        its succeeded attempts that ran (not cache hits): the run's duration history."""

    @abstractmethod
    def org_stats(self, org: str, since: float, recent: int = 100) -> OrgStats:
        """``org``'s figures for ``GET /metrics`` (``store.stats``): its runs by status, the
        workers holding its runs or that claimed one since ``since``, and the step durations
        of its latest ``recent`` finished runs."""

    @abstractmethod
    def get_answers(self, run_id: str) -> dict[str, Answer]:
        """The answers given to the run's approval steps, by step id."""

    @abstractmethod
    def get_cache(self, key: str, now: float) -> CacheEntry | None:
        """The cached output under ``key`` unless it has expired (``expires_at <= now``)."""

    # -- the run queue (docs/server.md) ---------------------------------------------------------

    @abstractmethod
    def enqueue(self, run: RunRecord) -> str:
        """Record ``run`` (status ``queued``) for a worker to claim; its id. A run of another
        status, or a duplicate id, is a StoreError."""

    @abstractmethod
    def claim(self, worker: str, lease: float, now: float) -> RunRecord | None:
        """Hand one run to ``worker`` for ``lease`` seconds from ``now``, or None if none waits.

        First a ``running`` run whose lease expired (``lease_until < now``: its worker died),
        to be resumed; else a ``queued`` one, chosen by the fairness rule: the organisation
        served least recently (its latest ``claimed_at``; never served counts as oldest), its
        oldest run (``created_at``, then id). The run comes back ``running``, its ``worker``,
        ``lease_until``, ``claimed_at`` and ``claims`` updated. Two claims never get one run.
        """

    @abstractmethod
    def renew(self, run_id: str, worker: str, lease: float, now: float) -> bool:
        """Extend ``worker``'s lease on the run to ``now + lease``; False if ``worker`` no
        longer holds it (another worker took it over, or it was released)."""

    @abstractmethod
    def cancel_queued(self, run_id: str, now: float, error: str) -> bool:
        """Mark a queued run ``cancelled`` (at ``now``, saying ``error``) unless a worker has
        claimed it meanwhile; False then, or if it was not queued."""

    @abstractmethod
    def request_cancel(self, run_id: str, by: str, now: float) -> bool:
        """Record that ``by`` asked at ``now`` to cancel a run a worker holds (``running``,
        under a lease); the worker cancels it once it reads the request (``cancel_requests``).
        False if the run is not running under a lease (queued, paused, finished, or run by
        ``pardag run``); a request already recorded is kept (the first asker is named)."""

    @abstractmethod
    def cancel_requests(self, worker: str) -> dict[str, str]:
        """The runs ``worker`` holds a lease on that someone asked to cancel: who asked, by
        run id. Cheap (one indexed read): workers ask beside their lease renewals."""

    @abstractmethod
    def requeue(self, run_id: str) -> bool:
        """Put a ``paused`` run back in the queue (an approval was answered: a worker goes on
        with it); False if it was not paused."""

    @abstractmethod
    def release(self, run_id: str, worker: str) -> bool:
        """Let go of ``worker``'s lease (``lease_until`` None), once the run stopped in
        ``worker``'s hands; False if ``worker`` did not hold it."""

    # -- the service's tokens and stored workflows (store/tenancy.py) ---------------------------

    @abstractmethod
    def create_token(self, token: TokenRecord) -> None:
        """Record a new API token (its hash, never its text), committed."""

    @abstractmethod
    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token whose text hashes to ``token_hash`` (revoked and expired ones too)."""

    @abstractmethod
    def list_tokens(self, org: str | None = None) -> list[TokenRecord]:
        """The tokens of ``org`` (None: of every organisation), oldest first."""

    @abstractmethod
    def revoke_token(self, token_id: str, now: float) -> bool:
        """Revoke a token from ``now`` on; False if there is no such token not yet revoked."""

    @abstractmethod
    def put_workflow(
        self, org: str, name: str, format: str, definition: str, now: float
    ) -> StoredWorkflow:
        """Store ``definition`` as the next version of workflow ``name`` of ``org`` (version 1,
        under a new id, for a new name); the version stored."""

    @abstractmethod
    def workflow_versions(self, org: str, workflow_id: str) -> list[StoredWorkflow]:
        """Every version of ``org``'s workflow ``workflow_id``, oldest first; [] when ``org``
        has no such workflow (another organisation's is not found either)."""

    @abstractmethod
    def list_workflows(self, org: str) -> list[StoredWorkflow]:
        """The latest version of each of ``org``'s workflows, by name."""

    @abstractmethod
    def delete_workflow(self, org: str, workflow_id: str) -> bool:
        """Delete every version of ``org``'s workflow ``workflow_id``; False if it had none."""

    # -- the service's triggers (store/triggers.py) ----------------------------------------------

    @abstractmethod
    def set_triggers(
        self, org: str, workflow_id: str, wanted: Sequence[TriggerRecord]
    ) -> list[TriggerRecord]:
        """Make ``wanted`` the triggers of ``org``'s workflow ``workflow_id``, in one
        transaction: those already registered (same ``key``) stay as they are (ids, secrets,
        fired slots), the others are added, those not wanted removed; the ones added. A webhook
        name another workflow of ``org`` has is a StoreError."""

    @abstractmethod
    def list_triggers(self, org: str, workflow_id: str | None = None) -> list[TriggerRecord]:
        """The triggers of ``org`` (of its workflow ``workflow_id`` only, if given), oldest
        first."""

    @abstractmethod
    def schedules(self) -> list[TriggerRecord]:
        """Every organisation's cron triggers, for the workers that fire them."""

    @abstractmethod
    def webhook(self, org: str, name: str) -> TriggerRecord | None:
        """``org``'s webhook ``name`` (with its secret), or None."""

    @abstractmethod
    def claim_slot(self, trigger_id: str, slot: float, now: float) -> bool:
        """Record that cron trigger ``trigger_id`` fired its ``slot`` (a time) at ``now``;
        False, recording nothing, if that slot or a later one was fired already (by anyone:
        of several workers claiming one slot, one gets True) or the trigger is gone."""

    # -- organisations' secrets, sealed (store/sealed.py) ---------------------------------------

    @abstractmethod
    def put_secret(self, org: str, name: str, ciphertext: str, now: float) -> bool:
        """Keep ``ciphertext`` as ``org``'s secret ``name`` (replacing its value); True if new."""

    @abstractmethod
    def secret_ciphertext(self, org: str, name: str | None) -> str | None:
        """The sealed value of ``org``'s secret ``name`` (None: of any one of its secrets, to
        check a key against), or None when there is none."""

    @abstractmethod
    def list_secrets(self, org: str) -> list[SecretInfo]:
        """``org``'s secrets by name: names and times, never values."""

    @abstractmethod
    def delete_secret(self, org: str, name: str) -> bool:
        """Forget ``org``'s secret ``name``; False if it had none."""

    @abstractmethod
    def reopen(
        self, run_id: str, was: str, status: str, settings_json: str, owner: str | None
    ) -> bool:
        """Start a new attempt of a finished run (``pardag retry``): its status ``status``
        (``running``, owned by ``owner``, or ``queued`` for a worker), its ``settings_json``
        replaced, ``finished_at``, ``error`` and any lease cleared, ``claims`` back to 0; only
        if its status is still ``was`` (two retries at once: one wins). False otherwise."""

    # -- lifetime -----------------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections; idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) as ``***``."""
    try:
        userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    except ValueError:  # malformed: mask whatever sits between "user:" and "@"
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    masked = url
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        masked = masked.replace(f"//{userinfo}@", f"//{user}:***@", 1)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", masked, flags=re.IGNORECASE)
