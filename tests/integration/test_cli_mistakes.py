"""Every `cem` mistake a newcomer makes is one line on stderr and a non-zero exit, never a
traceback (issue 13); `--help` gives every option's default; the data directory is said aloud."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cem import cli, data_dir
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.cli import parser
from cem.serving import free_port, stop_processes, wait_until_serving
from schemas.envelope import CustomerRef
from services.identity import IdentityResolver

REPO = Path(__file__).resolve().parents[2]


def cem(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cem.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_mistake(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Non-zero exit; stderr is exactly one line naming the mistake; no traceback anywhere."""
    assert done.returncode != 0, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cem"), lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A running `cem up` (no demo) on its own data directory: (url, data directory)."""
    home = tmp_path_factory.mktemp("cli-server")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cem.cli", "up", "--port", str(port), "--data-dir", str(home / "d")],
        cwd=home,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, timeout_s=120)
        yield url, home / "d"
    finally:
        stop_processes([process])  # type: ignore[list-item]


def test_a_bad_tenant_is_one_line(tmp_path: Path) -> None:
    done = cem("keys", "create", "--tenant", "bad tenant!", "--role", "agent", cwd=tmp_path)
    assert_one_line_mistake(done, "invalid tenant id", "'bad tenant!'")
    assert not (tmp_path / ".cem").exists(), "a refused key must not create a data directory"


def test_a_bad_role_or_command_is_one_line(tmp_path: Path) -> None:
    assert_one_line_mistake(
        cem("keys", "create", "--tenant", "acme", "--role", "boss", cwd=tmp_path), "'boss'"
    )
    assert_one_line_mistake(cem("bogus", cwd=tmp_path), "'bogus'")
    assert_one_line_mistake(cem("up", "--port", "many", cwd=tmp_path), "--port")
    # Found by a first-hour review: a negative rate was taken and the server started.
    assert_one_line_mistake(cem("up", "--demo", "--demo-rate", "-5", cwd=tmp_path), "above 0")
    assert not (tmp_path / ".cem").exists()


def test_revoking_an_unknown_key_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    done = cem("keys", "revoke", "nope", "--data-dir", "d", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("cem: data directory")  # said before touching it
    assert lines[1:] == ["cem keys: no key with id 'nope'"]


def test_simulate_against_a_wrong_port_fails(tmp_path: Path) -> None:
    done = cem("simulate", "--url", f"http://127.0.0.1:{free_port()}", "--key", "k", cwd=tmp_path)
    assert_one_line_mistake(done, "cannot reach")
    assert done.returncode == 1


def test_simulate_with_a_bad_url_fails(tmp_path: Path) -> None:
    done = cem("simulate", "--url", "localhost8000", "--key", "k", cwd=tmp_path)
    assert_one_line_mistake(done, "--url", "'localhost8000'")


def test_simulate_with_a_refused_key_fails(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    done = cem("simulate", "--url", url, "--key", "cem_nope", "--duration", "2", cwd=tmp_path)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("cem simulate:"), done.stderr


def test_up_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cem("up", "--port", str(port), "--data-dir", "d", cwd=tmp_path)
    assert_one_line_mistake(done, f"port {port}", "busy")


def test_up_on_a_held_data_directory_is_one_line(server: tuple[str, Path], tmp_path: Path) -> None:
    _, held = server
    done = cem("up", "--port", str(free_port()), "--data-dir", str(held), cwd=tmp_path)
    assert_one_line_mistake(done, "in use by another cem process", "pid")
    done = cem("replay", "--data-dir", str(held), "--into", "again", cwd=tmp_path)
    assert_one_line_mistake(done, "in use by another cem process")


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cem import data_dir; from pathlib import Path;"
         "cm = data_dir.exclusive(Path(sys.argv[1])); cm.__enter__(); print('held', flush=True);"
         "time.sleep(60)", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with data_dir.exclusive(tmp_path):
        pass  # taken at once


def test_replay_mistakes_are_one_line(tmp_path: Path) -> None:
    assert_one_line_mistake(cem("replay", "--into", "cem", cwd=tmp_path), "--into")
    assert_one_line_mistake(cem("replay", "--data-dir", "empty", cwd=tmp_path), "no event log")


def test_a_damaged_sqlite_file_is_one_line_naming_it(tmp_path: Path) -> None:
    # A log or key store cut short or overwritten ended in a traceback (found by a review).
    data = tmp_path / "d"
    data.mkdir()
    (data / "log.sqlite").write_bytes(os.urandom(20_000))
    done = cem("replay", "--data-dir", str(data), cwd=tmp_path)
    assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"cem replay: {data / 'log.sqlite'} is damaged (file is not a database): restore it "
        "from a backup"
    )
    env = {"CEM_DATA_DIR": str(data)}
    assert cem("keys", "create", "--tenant", "acme", "--role", "agent", cwd=tmp_path, env=env)
    keys = (data / "keys.sqlite").read_bytes()
    (data / "keys.sqlite").write_bytes(keys[:100] + os.urandom(4000) + keys[4100:])
    done = cem("keys", "list", "--tenant", "acme", cwd=tmp_path, env=env)
    assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr
    assert f"{data / 'keys.sqlite'} is damaged" in done.stderr.strip().splitlines()[-1]


def test_keys_list_is_a_table_and_names_the_data_directory(tmp_path: Path) -> None:
    env = {"CEM_DATA_DIR": str(tmp_path / "from-env")}
    created = cem("keys", "create", "--tenant", "acme", "--role", "agent", cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    assert f"data directory {tmp_path / 'from-env'} (from CEM_DATA_DIR)" in created.stderr
    listed = cem("keys", "list", "--tenant", "acme", cwd=tmp_path, env=env)
    header, row = listed.stdout.strip().splitlines()
    assert header.split()[:4] == ["key_id", "tenant_id", "role", "name"]
    assert row.split()[1:3] == ["acme", "agent"]
    assert created.stdout.strip().startswith(f"cem_{row.split()[0]}")
    (tmp_path / "other").mkdir()
    flagged = cem("keys", "list", "--tenant", "acme", "--data-dir", "other", cwd=tmp_path, env=env)
    assert "(from --data-dir)" in flagged.stderr
    assert flagged.stdout == ""  # another directory holds no key: and says which one it read
    assert "no keys for tenant 'acme'" in flagged.stderr


def test_reading_keys_or_accounts_where_no_data_directory_is_one_line(tmp_path: Path) -> None:
    """Run from another directory than `cem up`'s: said, and no empty data directory made."""
    for command in (("keys", "list", "--tenant", "acme"), ("users", "list")):
        assert_one_line_mistake(cem(*command, cwd=tmp_path), "no data directory", "(from default)")
    revoked = cem("keys", "revoke", "k1", "--data-dir", "elsewhere", cwd=tmp_path)
    assert_one_line_mistake(revoked, "no data directory", "(from --data-dir)", "no keys")
    unlocked = cem("users", "unlock", "a@b.co", cwd=tmp_path)
    assert_one_line_mistake(unlocked, "no data directory", "no accounts")
    assert list(tmp_path.iterdir()) == []


def _commands(p: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _commands(child)


def test_every_option_has_help_and_shows_its_default() -> None:
    for command in _commands(parser()):
        assert issubclass(command.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
        shown = " ".join(command.format_help().split())  # unwrapped
        # An option defaulting to None says in its help what applies then.
        assert "(default: None)" not in shown, command.prog
        # ... in words, not as Python's `None` (`None: prompt, else generate`).
        assert "None" not in shown, f"{command.prog}: {shown}"
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{command.prog} {action.dest} has no help"
            if action.option_strings and not action.required and action.default is not None:
                default = f"(default: {action.default})"
                assert default in shown, f"{command.prog} {action.option_strings[0]}: no {default}"


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cem("serve", "query-api", "--port", str(port), cwd=tmp_path)
        # A worker's health port too (an 80-line traceback from faust's web server before).
        worker = cem("serve", "projections", "--health-port", str(port), cwd=tmp_path)
    assert_one_line_mistake(done, f"port {port}", "busy")
    assert_one_line_mistake(worker, f"port {port}", "busy", "--health-port")


def test_serve_with_unreachable_engines_is_one_line(tmp_path: Path) -> None:
    unreachable = {
        "CEM_MODE": "distributed",
        "CEM_CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}/cem",
        "CEM_POSTGRES_DSN": f"postgresql://cem@127.0.0.1:{free_port()}/cem?connect_timeout=2",
    }
    done = cem("serve", "query-api", "--port", str(free_port()), cwd=tmp_path, env=unreachable)
    assert_one_line_mistake(done, "cannot start query-api")


def test_up_on_an_identity_store_in_clear_with_sealing_on_is_one_line(tmp_path: Path) -> None:
    """A store is sealed or clear from its first event: turning CEM_SEAL_PERSONAL_DATA on for a
    data directory written in clear is refused at start, naming the setting, and the store is
    left as it was (`services.identity.at_rest`)."""
    store = SqliteIdentityStore(tmp_path / "d" / "identity.sqlite")
    (tmp_path / "d").mkdir()
    identity = IdentityResolver(store)
    try:
        identity.resolve("acme", CustomerRef(email="lucia.perez@gmail.com"), "e-1", "http")
    finally:
        identity.close()
    sealed = {"CEM_SEAL_PERSONAL_DATA": "true"}
    done = cem("up", "--port", str(free_port()), "--data-dir", "d", cwd=tmp_path, env=sealed)
    # `up` names its data directory first (on stderr), then the mistake, in one line.
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr, done
    mistake = done.stderr.strip().splitlines()[-1]
    assert mistake.startswith("cem up: the identity store holds its events in clear"), mistake
    assert "CEM_SEAL_PERSONAL_DATA is on" in mistake
    identity = IdentityResolver(store)
    try:
        assert identity.filing_of("acme", "e-1") is not None
    finally:
        identity.close()


def test_an_unreachable_postgresql_is_one_line_after_saying_where(tmp_path: Path) -> None:
    # Distributed, a command that reads PostgreSQL once printed a warning per connection attempt
    # and a 50-line traceback when nothing answered (found by a review).
    nobody = f"postgresql://cem@127.0.0.1:{free_port()}/cem"
    env = {"CEM_MODE": "distributed", "CEM_POSTGRES_DSN": nobody}
    done = cem("keys", "list", "--tenant", "acme", cwd=tmp_path, env=env)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    said, mistake = done.stderr.strip().splitlines()  # where the keys are, then what went wrong
    assert said == "cem: keys are stored in PostgreSQL (CEM_MODE=distributed)"
    assert mistake.startswith("cem keys: PostgreSQL at 127.0.0.1:"), mistake
    assert "(CEM_POSTGRES_DSN)" in mistake, mistake


@pytest.mark.parametrize(("args", "named"), [(["keys"], "create, list, revoke"),
                                             (["dead-letters"], "list, replay")])  # fmt: skip
def test_a_command_without_its_subcommand_names_them(
    tmp_path: Path, args: list[str], named: str
) -> None:
    # argparse said "the following arguments are required: keys" (found by a review).
    assert_one_line_mistake(cem(*args, cwd=tmp_path), f"name a command: {named}")


def test_a_bad_setting_in_the_environment_is_named_as_it_was_written(tmp_path: Path) -> None:
    # It was named by the field (`backlog_limit: …`), which the user never typed.
    done = cem("keys", "list", "--tenant", "acme", cwd=tmp_path, env={"CEM_MODE": "sideways"})
    assert_one_line_mistake(done, "CEM_MODE:")


def test_migrating_a_directory_that_does_not_exist_makes_none(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    done = cem(
        "migrate-ids", "--data-dir", str(missing), "--into", str(tmp_path / "new"), cwd=tmp_path
    )
    assert_one_line_mistake(done, "no event log in")
    assert not missing.exists()  # it was created, empty, before the refusal (found by a review)


def _subcommands(p: argparse.ArgumentParser) -> dict[str, str]:
    """The commands' names and help, as `cem --help` lists them."""
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return {c.dest: c.help or "" for c in action._choices_actions}


def test_a_command_builds_only_its_own_parser_and_cem_help_lists_every_command() -> None:
    whole = parser()
    assert _subcommands(parser(["--help"])) == _subcommands(whole)  # names, order and help
    lazy = {name for name, _ in _subcommands(whole).items() if name in cli.LAZY_HELP}
    assert lazy == set(cli.LAZY_HELP)
    for name in cli.LAZY_HELP:
        chosen = parser([name, "--help"])
        siblings = next(set(names) for names, _ in cli._COMMANDS if name in names)
        for other in lazy - siblings:  # the others are their name and help only
            assert not _commands_of(chosen, other)._actions[1:], other
        assert _commands_of(chosen, name).format_help() == _commands_of(whole, name).format_help()


def _commands_of(p: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = action.choices[name]
    return found


def test_cem_help_starts_without_the_commands_modules() -> None:
    # `cem --help`, `cem keys …`: about a second of imports before (fastapi, httpx, the identity
    # rules) for modules of other commands.
    code = (
        "import sys; from cem.cli import parser; parser(['keys', 'list']);"
        "heavy = [m for m in ('fastapi', 'httpx', 'cem.audit_cli', 'cem.migrate_ids',"
        " 'cem.retention_cli', 'cem.serve', 'services.identity') if m in sys.modules];"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
