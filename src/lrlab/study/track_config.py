"""The ``[track]`` table: log every trial to an experiment tracker (TensorBoard or MLflow).

::

    [track]
    backend = "mlflow"                     # or "tensorboard"
    uri = "sqlite:///runs/mlflow.db"       # optional; default: inside the study directory
    experiment = "digits-1cycle"           # optional; default: the study's name

``lrlab study run --track mlflow --track-uri ... --track-experiment ...`` sets or
overrides it (`with_overrides`). Tracking is not part of a study's identity: adding or
changing ``[track]`` never makes a study directory's results "a different configuration".

The study layer only defines what is asked (`TrackConfig`) and what a sink must do
(`Tracker`); the sinks themselves live in `lrlab.integrations.tracking`, the layer above,
and `lrlab.study.run_study` calls the one it is handed from the driver process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field, field_validator

from lrlab.study.config_fields import Strict

if TYPE_CHECKING:
    from lrlab.study.config import StudyConfig
    from lrlab.study.resolve import TrialSpec

BACKENDS = ("tensorboard", "mlflow")
#: What each backend imports, and what pip installs it (the ``[track]`` extra).
PACKAGES = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow",)}
#: MLflow's SQL stores (``sqlite:///...``) need these beside ``mlflow-skinny``.
SQL_PACKAGES = ("sqlalchemy", "alembic")
INSTALL = 'pip install "lrlab[track]"'


class TrackConfig(Strict):
    """Where a study's trials are logged.

    Attributes:
        backend: ``"tensorboard"`` (event files) or ``"mlflow"`` (a tracking store).
        uri: TensorBoard: the log directory. MLflow: a tracking URI, ``sqlite:///path.db``
            (MLflow's recommended local store), a directory or ``file:`` URI (MLflow's
            file store; MLflow 3 refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``), or
            ``http(s)://`` for a tracking server. Default: ``<study dir>/tensorboard``,
            or ``sqlite:///<study dir>/mlflow.db``.
        experiment: MLflow's experiment, TensorBoard's sub-directory of ``uri``; default:
            the study's name. Use one experiment per study directory: a trial's run is
            found again (and replaced) by its study directory and trial id.

    >>> TrackConfig(backend="mlflow").backend
    'mlflow'
    >>> try:
    ...     TrackConfig(backend="wandb")
    ... except ValueError as e:
    ...     print("backend" in str(e))
    True
    """

    backend: Literal["tensorboard", "mlflow"]
    uri: str | None = Field(default=None, min_length=1)
    experiment: str | None = Field(default=None, min_length=1, max_length=250)

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("uri is blank; expected a directory or a tracking URI")
        return v


class Tracker(Protocol):
    """A sink `run_study` logs to from the driver process, never from a worker.

    ``open`` runs after the study's checks, before the first trial; ``trial`` runs when a
    trial's result arrives, before the store records it (so a driver killed in between
    logs the trial again on the next run: a sink replaces a trial's earlier run); ``close``
    runs at the end, also after an error.
    """

    def open(self, study: StudyConfig, directory: Path, provenance: dict[str, str]) -> None: ...

    def trial(self, spec: TrialSpec, result: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def with_overrides(
    track: TrackConfig | None,
    backend: str | None = None,
    uri: str | None = None,
    experiment: str | None = None,
) -> TrackConfig | None:
    """The study file's ``[track]`` with the command line's choices applied.

    ``backend="none"`` turns tracking off. A new backend drops the file's ``uri`` (an
    MLflow URI is no TensorBoard directory) unless ``uri`` is given too.

    >>> file = TrackConfig(backend="mlflow", uri="sqlite:///m.db", experiment="e")
    >>> with_overrides(file, backend="tensorboard")
    TrackConfig(backend='tensorboard', uri=None, experiment='e')
    >>> with_overrides(file, experiment="f").uri
    'sqlite:///m.db'
    >>> with_overrides(file, backend="none") is None
    True
    """
    if backend == "none":
        return None
    if backend is not None and backend not in BACKENDS:
        raise ValueError(
            f"--track={backend!r} is invalid; expected one of {', '.join(BACKENDS)} or none"
        )
    if track is None and backend is None:
        if uri is not None or experiment is not None:
            raise ValueError(
                "--track-uri/--track-experiment need a backend: add --track tensorboard|mlflow "
                "or a [track] table to the study file"
            )
        return None
    current = track.model_dump() if track is not None else {}
    if backend is not None and backend != current.get("backend"):
        current = {"backend": backend, "experiment": current.get("experiment")}
    if uri is not None:
        current["uri"] = uri
    if experiment is not None:
        current["experiment"] = experiment
    return TrackConfig.model_validate(current)


def resolved_uri(track: TrackConfig, directory: Path) -> str:
    """``track.uri``, or the default inside the study ``directory``.

    >>> resolved_uri(TrackConfig(backend="mlflow"), Path("/runs/s"))
    'sqlite:////runs/s/mlflow.db'
    >>> resolved_uri(TrackConfig(backend="tensorboard"), Path("/runs/s"))
    '/runs/s/tensorboard'
    """
    if track.uri is not None:
        return track.uri
    if track.backend == "mlflow":
        return f"sqlite:///{directory / 'mlflow.db'}"
    return str(directory / "tensorboard")


def store_of(track: TrackConfig, uri: str) -> tuple[str, Path | None]:
    """What kind of store a URI names and the local directory it writes to (None: remote).

    Kinds: ``"directory"`` (TensorBoard's log directory, MLflow's file store), ``"sql"``
    (MLflow's SQLAlchemy stores: ``sqlite:///...``, ``postgresql://...``) and
    ``"server"`` (``http(s)://``, Databricks).

    >>> store_of(TrackConfig(backend="mlflow"), "sqlite:////runs/s/mlflow.db")
    ('sql', PosixPath('/runs/s'))
    >>> store_of(TrackConfig(backend="mlflow"), "https://mlflow.example.org")
    ('server', None)
    >>> store_of(TrackConfig(backend="mlflow"), "file:///runs/mlruns")
    ('directory', PosixPath('/runs/mlruns'))
    """
    if track.backend == "tensorboard":
        return "directory", Path(uri).expanduser().absolute()
    if uri in ("databricks", "databricks-uc"):
        return "server", None
    scheme, sep, rest = uri.partition("://")
    if not sep and uri.startswith("file:"):
        scheme, sep, rest = "file", ":", uri[len("file:") :]
    if not sep:  # a plain path: MLflow's file store
        return "directory", Path(uri).expanduser().absolute()
    scheme = scheme.lower().split("+")[0]  # postgresql+psycopg2://
    if scheme == "file":
        return "directory", Path(rest).absolute()
    if scheme == "sqlite":
        path = rest[1:]  # sqlite:///relative.db, sqlite:////absolute.db
        if path in ("", ":memory:"):
            raise ValueError(
                f"track.uri={uri!r} is an in-memory database, gone when the study ends; "
                "expected sqlite:///path/to/mlflow.db"
            )
        return "sql", Path(path).expanduser().absolute().parent
    if scheme in ("postgresql", "mysql", "mssql"):
        return "sql", None
    if scheme in ("http", "https", "databricks"):
        return "server", None
    raise ValueError(
        f"track.uri={uri!r} is not a tracking URI lrlab knows; expected sqlite:///path.db, "
        "a directory (or file:/path), or http(s)://host for a tracking server"
    )
