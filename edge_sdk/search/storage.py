"""Where an Optuna study lives: a SQLite file by default, any SQLAlchemy database URL for many workers.

Workers on several machines share a study by pointing at one server (`postgresql://user:pw@host/db`).
Trials carry a heartbeat: a worker killed mid-trial leaves a RUNNING trial that the next worker
marks FAIL after the grace period, so an interrupted study resumes instead of waiting on a ghost.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from ..errors import DistillError

HEARTBEAT_S = 30
GRACE_S = 120
# What to install for each SQLAlchemy driver (SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3).
DRIVERS = {"psycopg": '"psycopg[binary]"', "psycopg2": "psycopg2-binary", "pymysql": "pymysql",
           "mysqldb": "mysqlclient (or use mysql+pymysql:// with pymysql)"}


def default_storage(out_dir: str | Path) -> str:
    return f"sqlite:///{(Path(out_dir) / 'study.db').resolve()}"


def shown(url: str) -> str:
    """The URL with any password masked, for messages and the recorded recipe."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def open_storage(url: str, connect_timeout_s: int = 10):
    """An optuna RDBStorage for `url`, or a DistillError saying what to install or fix."""
    import optuna
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise DistillError(f"not a database URL: {url!r} (e.g. sqlite:///study.db or "
                           "postgresql://user:password@host:5432/db)") from None
    backend = parsed.get_backend_name()
    try:
        driver = parsed.get_driver_name()
    except Exception:  # an unknown dialect: SQLAlchemy says so below
        driver = ""
    engine_kwargs = {"pool_pre_ping": True}
    if backend == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": connect_timeout_s}
    elif backend == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}  # several local workers on one file wait, not fail
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    last = None
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                  heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except (ImportError, sqlalchemy.exc.NoSuchModuleError):
            hint = DRIVERS.get(driver, f"the DB-API driver {driver or backend!r}")
            raise DistillError(f"study storage {shown(url)} needs a database driver: pip install {hint}") from None
        except sqlalchemy.exc.OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
            raise DistillError(f"cannot reach study storage {shown(url)}: {first}") from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            # Workers starting together on an empty database race to create the tables; the loser retries.
            last = exc
            time.sleep(0.5 + attempt)
    raise DistillError(f"cannot create the study tables in {shown(url)}: {str(last).splitlines()[0]}")
