"""Backups that restore (docs/backup.md): taken from a real server while it writes, they
hold every turn acknowledged before they began, and the server starts on the restore."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mongars.app import create_app
from mongars.backup.restore import restore_backup
from mongars.backup.snapshot import create_backup
from mongars.cli import app
from mongars.db import migrate
from mongars.errors import DomainError
from mongars.peers.identity import NodeIdentity
from mongars.settings import Settings, ensure_secret_key
from tests.conftest import PASSWORD, Api, free_port, fresh_database, make_settings
from tests.fakes import ScriptedLLM

BIN = Path(sys.executable).parent
ADMIN = "backup-admin"
WRITERS = 3


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGARS_")}
    env.update(
        MONGARS_DATA_DIR=str(data_dir),
        MONGARS_OFFLINE="true",
        MONGARS_MEMORY__ENABLED="false",
        MONGARS_RESEARCH__DOCUMENTS="false",
        MONGARS_EVOLUTION__ENABLED="false",
        MONGARS_LLM__MAX_TOKENS="3",
        MONGARS_LOG_LEVEL="warning",
        MONGARS_RATE_LIMITS__ENABLED="false",  # the writers chat as fast as they can
        **extra,
    )
    return env


def cli(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> Any:
    """`mongars ARGS` in this process (a subprocess costs seconds of imports)."""
    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("MONGARS_")]:
            m.delenv(key)
        for key, value in env.items():
            if key.startswith("MONGARS_"):
                m.setenv(key, value)
        return CliRunner().invoke(app, list(args))


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A server process on a free loopback port; its base URL once /healthz answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*args, str(port)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not up in 90 s: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def login(url: str) -> dict[str, str]:
    r = httpx.post(f"{url}/token", data={"username": ADMIN, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


class Writer(threading.Thread):
    """Chats into its own thread until stopped; keeps every acknowledged turn in order."""

    def __init__(
        self, url: str, headers: dict[str, str], thread_id: str, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.thread_id, self.stop = url, headers, thread_id, stop
        self.turns: list[tuple[str, str]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as client:
                while not self.stop.is_set():
                    message = f"{self.thread_id} turn {len(self.turns)}"
                    body = {"message": message, "session_id": self.thread_id}
                    r = client.post("/api/v1/conversation/chat", json=body)
                    r.raise_for_status()
                    self.turns.append((message, r.json()["response"]))
        except BaseException as exc:  # reported by the test
            self.error = exc


def stored_turns(
    client: TestClient, headers: dict[str, str], thread_id: str
) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        r = client.get(f"/api/v1/threads/{thread_id}/messages", params=params, headers=headers)
        assert r.status_code == 200, r.text
        turns += [(m["query"], m["response"]) for m in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return turns


def test_backup_during_writes_restores_every_acknowledged_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    source = tmp_path / "source"
    env = server_env(source, MONGARS_NEW_PASSWORD=PASSWORD)
    created = cli(monkeypatch, env, "users", "create", "--admin", ADMIN)
    assert created.exit_code == 0, created.output
    NodeIdentity.load_or_create(source)  # node_keys/, as peers make them
    (source / "datasets" / "d1").mkdir(parents=True)
    (source / "datasets" / "d1" / "train.jsonl").write_text('{"text": "kept"}\n')
    (source / "models").mkdir()
    (source / "models" / "prepared.gguf").write_bytes(b"prepared again from the package")
    archive = tmp_path / "backup.tar.gz"

    loadserver = [sys.executable, "-m", "mongars.bench.loadserver"]
    with running(loadserver, env, tmp_path / "source.log") as url:
        headers, stop = login(url), threading.Event()
        writers = [Writer(url, headers, f"w{i}", stop) for i in range(WRITERS)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 60
        while min(len(w.turns) for w in writers) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        acked = {w.thread_id: len(w.turns) for w in writers}  # before the backup began
        done = subprocess.run(
            [str(BIN / "mongars"), "backup", str(archive)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        during = {w.thread_id: len(w.turns) for w in writers}
        stop.set()
        for w in writers:
            w.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert "backup written" in done.stderr
    assert all(w.error is None for w in writers), [w.error for w in writers]
    assert all(acked[t] >= 3 for t in acked), acked
    assert sum(during.values()) > sum(acked.values()), "no turn was written during the backup"

    restored = tmp_path / "restored"
    result = cli(monkeypatch, server_env(restored), "restore", str(archive))
    assert result.exit_code == 0, result.output
    for name in ("secret_key", "node_keys/signing.pem", "datasets/d1/train.jsonl"):
        assert (restored / name).read_bytes() == (source / name).read_bytes(), name
    assert (restored / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (restored / "node_keys" / "signing.pem").stat().st_mode & 0o777 == 0o600
    assert (restored / "node_keys").stat().st_mode & 0o777 == 0o700
    assert not (restored / "models").exists() and not (restored / "scheduler.lock").exists()

    # The server starts on it (in this process: a second server process costs ~10 s of
    # imports): migrations, the stored secret, the restored scheduler database.
    settings = make_settings(
        tmp_path, data_dir=restored, secret_key="", scheduler={"enabled": True}
    )
    with TestClient(create_app(settings, llm=ScriptedLLM())) as client:
        api = Api(client)
        headers = api.login(ADMIN)  # the account and the signing secret came back
        listed = client.get("/api/v1/threads", params={"limit": 100}, headers=headers)
        assert {t["id"] for t in listed.json()["items"]} == {w.thread_id for w in writers}
        for w in writers:
            turns = stored_turns(client, headers, w.thread_id)
            # every acknowledged turn, exactly, and nothing that was never sent
            assert len(turns) >= acked[w.thread_id]
            assert turns == w.turns[: len(turns)], w.thread_id


# --- what restore refuses (a small backup made once, then altered) ---------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """A migrated SQLite data dir with a secret, node keys and a training run's spec that
    names the data dir's path; and its backup as a .tar."""
    root = tmp_path_factory.mktemp("small")
    settings = make_settings(root, secret_key="")
    migrate.upgrade(settings.resolved_database_url)
    ensure_secret_key(settings)
    NodeIdentity.load_or_create(settings.data_dir)
    run = settings.data_dir / "training" / "runs" / "r1"
    run.mkdir(parents=True)
    home = settings.data_dir.resolve()
    spec = {"dataset_dir": f"{home}/datasets/d1", "mlflow": {"uri": f"sqlite:///{home}/m.db"}}
    (run / "spec.json").write_text(json.dumps(spec))
    return settings, create_backup(settings, root / "small.tar").path


def tar_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar if m.isreg()]  # type: ignore[union-attr]


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def altered(
    small: tuple[Settings, Path], tmp_path: Path, name: str, change: Callable[[bytes], bytes]
) -> Path:
    members = [(i, change(d) if i.name == name else d) for i, d in tar_members(small[1])]
    return write_tar(tmp_path / "altered.tar", members)


def refused(tmp_path: Path, backup: Path) -> str:
    target = tmp_path / "target"
    with pytest.raises(DomainError) as caught:
        restore_backup(make_settings(tmp_path, data_dir=target), backup)
    assert not target.exists(), "a refused restore wrote the data dir"
    return caught.value.detail


def test_restore_refuses_a_non_empty_data_dir_in_one_line(
    small: tuple[Settings, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = cli(monkeypatch, server_env(target), "restore", str(small[1]))
    assert result.exit_code == 1
    assert "is not empty" in result.output and result.output.strip().count("\n") == 0
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_restore_refuses_a_tampered_file(small: tuple[Settings, Path], tmp_path: Path) -> None:
    backup = altered(small, tmp_path, "data/secret_key", lambda d: d[:-1] + b"!")
    assert "data/secret_key is damaged" in refused(tmp_path, backup)


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("../../evil"), "hostile"),
        (_member("/tmp/mongars-backup-evil"), "hostile"),
        (_member("data/link", tarfile.SYMTYPE, "/etc/passwd"), "hostile"),
        (_member("data/link", tarfile.SYMTYPE, "secret_key"), "not a regular file"),
        (_member("data/hard", tarfile.LNKTYPE, "data/secret_key"), "not a regular file"),
    ],
    ids=["traversal", "absolute", "symlink-out", "symlink-in", "hardlink"],
)
def test_restore_refuses_a_hostile_archive(
    small: tuple[Settings, Path], tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    backup = write_tar(tmp_path / "hostile.tar", [*tar_members(small[1]), (member, b"x")])
    assert reason in refused(tmp_path, backup)
    assert not Path("/tmp/mongars-backup-evil").exists()
    assert not (tmp_path.parent / "evil").exists()


def test_restore_refuses_foreign_and_newer_backups(
    small: tuple[Settings, Path], tmp_path: Path
) -> None:
    not_tar = tmp_path / "notes.tar"
    not_tar.write_bytes(b"just some bytes, not an archive" * 20)
    assert "not a backup archive" in refused(tmp_path, not_tar)
    no_manifest = [(i, d) for i, d in tar_members(small[1]) if i.name != "manifest.json"]
    assert "no manifest.json" in refused(tmp_path, write_tar(tmp_path / "n.tar", no_manifest))

    def manifest(**changes: Any) -> Callable[[bytes], bytes]:
        return lambda raw: json.dumps({**json.loads(raw), **changes}).encode()

    foreign = altered(small, tmp_path, "manifest.json", manifest(format="other-tool"))
    assert "not a monGARS backup" in refused(tmp_path, foreign)
    newer = altered(small, tmp_path, "manifest.json", manifest(alembic_revision="9999"))
    assert "does not know" in refused(tmp_path, newer)
    unsafe = manifest(files=[{"path": "data/../../x", "sha256": "0" * 64, "size": 1}])
    assert "unsafe" in refused(tmp_path, altered(small, tmp_path, "manifest.json", unsafe))
    # an older migration is fine: the server migrates at start
    older = altered(small, tmp_path, "manifest.json", manifest(alembic_revision="0001"))
    assert restore_backup(make_settings(tmp_path, data_dir=tmp_path / "ok"), older)


def test_folder_backup_restores_elsewhere_with_paths_moved(
    small: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings = small[0]
    folder = create_backup(settings, tmp_path / "folder-backup").path
    assert (folder / "manifest.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(DomainError, match="already exists"):
        create_backup(settings, folder)
    with pytest.raises(DomainError, match="inside the data dir"):
        create_backup(settings, settings.data_dir / "b.tar")
    with pytest.raises(DomainError, match="no database"):
        create_backup(make_settings(tmp_path, data_dir=tmp_path / "none"), tmp_path / "n.tar")
    target = tmp_path / "elsewhere" / "data"
    result = restore_backup(make_settings(tmp_path, data_dir=target), folder)
    assert result.relocated
    spec = json.loads((target / "training" / "runs" / "r1" / "spec.json").read_text())
    assert spec["dataset_dir"] == f"{target}/datasets/d1"
    assert spec["mlflow"]["uri"] == f"sqlite:///{target}/m.db"
    assert (target / "secret_key").read_bytes() == (settings.data_dir / "secret_key").read_bytes()
    for path in [target, *target.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")], "staging left"


@pytest.mark.postgres
def test_postgres_backup_restores_into_an_empty_database(
    postgres_url: str, pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = server_env(
        tmp_path / "pg-data", MONGARS_DATABASE_URL=pg_database, MONGARS_NEW_PASSWORD=PASSWORD
    )
    assert cli(monkeypatch, env, "users", "create", "--admin", ADMIN).exit_code == 0
    archive = tmp_path / "pg.tar.gz"
    made = cli(monkeypatch, env, "backup", str(archive))
    assert made.exit_code == 0, made.output
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["database"]["kind"] == "postgresql"
    assert manifest["alembic_revision"] == migrate_head()

    restored = tmp_path / "pg-restored"
    into_itself = cli(monkeypatch, server_env(restored, MONGARS_DATABASE_URL=pg_database),
                      "restore", str(archive))  # fmt: skip
    assert into_itself.exit_code == 1 and "target database is not empty" in into_itself.output
    assert not restored.exists()
    with fresh_database(postgres_url) as target_url:
        env = server_env(restored, MONGARS_DATABASE_URL=target_url)
        done = cli(monkeypatch, env, "restore", str(archive))
        assert done.exit_code == 0, done.output
        listing = cli(monkeypatch, env, "users", "list")
        assert listing.exit_code == 0 and ADMIN in listing.output
    assert (restored / "secret_key").stat().st_mode & 0o777 == 0o600


def migrate_head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(migrate.alembic_config("")).get_current_head())
