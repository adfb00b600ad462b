"""`cem channels` and `cem dead-letters` on an embedded data directory, as an operator runs them:
the URL to give the provider on stdout, mistakes as one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cem.cli import main

SECRET = "shpss_cli_secret_value"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_prints_the_webhook_url_and_list_never_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out, _ = run(capsys, "channels", "add", "shopify", "--tenant", "acme", "--secret", SECRET,
                       "--url", "https://cem.example.com", *data)  # fmt: skip
    assert code == 0
    assert out.startswith("https://cem.example.com/v1/webhooks/shopify/ch_")
    channel_id = out.strip().rsplit("/", 1)[1]
    code, listed, _ = run(capsys, "channels", "list", "--tenant", "acme", *data)
    assert code == 0 and channel_id in listed and SECRET not in listed
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("channels.sqlite*"))
    assert SECRET.encode() not in stored
    mapping = json.dumps({"touchpoint": "tienda_online"})
    assert (
        run(
            capsys, "channels", "set", channel_id, "--tenant", "acme", "--settings", mapping, *data
        )[0]
        == 0
    )
    assert "tienda_online" in run(capsys, "channels", "list", "--tenant", "acme", *data)[1]
    assert run(capsys, "channels", "remove", channel_id, "--tenant", "acme", *data)[0] == 0
    assert channel_id not in run(capsys, "channels", "list", "--tenant", "acme", *data)[1]


def test_channels_use_the_data_directory_every_command_finds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --data-dir, `cem channels` read ./.cem even when CEM_DATA_DIR named the platform's.
    monkeypatch.setenv("CEM_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "channels", "add", "shopify", "--tenant", "acme", "--secret", SECRET)
    assert code == 0
    assert list((tmp_path / "state").glob("channels.sqlite*"))
    assert not (tmp_path / ".cem").exists()
    channel_id = out.strip().rsplit("/", 1)[1]
    assert channel_id in run(capsys, "channels", "list", "--tenant", "acme")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["channels", "add", "fax", "--tenant", "acme", "--secret", "x"], "unknown provider 'fax'"),
        (["channels", "add", "typeform", "--tenant", "acme", "--secret", "x", "--settings", "[1]"],
         "--settings must be a JSON object"),
        (["channels", "remove", "ch_nope", "--tenant", "acme"], "has no channel 'ch_nope'"),
        (["dead-letters", "list", "--since", "yesterday"], "--since 'yesterday'"),
        # Found by a first-hour review: each of these was taken.
        (["channels", "add", "shopify", "--tenant", "Bad T", "--secret", "x"],
         "invalid tenant id 'Bad T'"),
        (["channels", "add", "shopify", "--tenant", "acme", "--secret", "x", "--url", "not a url"],
         "--url 'not a url' is not an http(s) URL"),
        (["channels", "add", "typeform", "--tenant", "acme", "--secret", "x", "--settings",
          "@/nonexistent.json"], "--settings: cannot read '/nonexistent.json'"),
        (["dead-letters", "list", "--provider", "nosuch"], "unknown provider 'nosuch'"),
        (["channels", "add", "typeform", "--tenant", "acme", "--secret", "x", "--settings",
          '{"questions": 5}'], "--settings: settings.questions"),
        (["channels", "add", "typeform", "--tenant", "acme", "--secret", "x", "--settings",
          '{"questions": {"q1": "nsp"}}'], "settings.questions.q1"),
        (["dead-letters", "list", "--since", "2026-11-10T08:00"], "needs a UTC offset"),
        # Taken, then every delivery was 401 (a review): SendGrid's key is an ECDSA public key.
        (["channels", "add", "sendgrid", "--tenant", "acme", "--secret", "not-a-key"],
         "--secret: not a SendGrid verification key: not base64"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args, "--data-dir", str(tmp_path))
    assert code != 0 and out == ""
    # The mistake in one line, after the data directory the command read when it got that far.
    *said, mistake = err.strip().splitlines()
    assert message in mistake and "Traceback" not in err
    assert said in ([], [f"cem: data directory {tmp_path.resolve()} (from --data-dir)"]), said


def test_commands_that_read_channels_make_no_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from another directory than `cem up`'s, `channels list` printed nothing and
    # `dead-letters replay` made a new log and warehouse there (found by a review).
    monkeypatch.delenv("CEM_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    for args in (["channels", "list", "--tenant", "acme"], ["dead-letters", "list"],
                 ["dead-letters", "replay"]):  # fmt: skip
        code, out, err = run(capsys, *args)
        assert code != 0 and out == "", (args, out)
        assert "no data directory" in err and "--data-dir" in err, err
    assert not (tmp_path / ".cem").exists()
    # Adding a channel is what creates one, and says so.
    code, out, err = run(capsys, "channels", "add", "typeform", "--tenant", "acme", "--secret", "x")
    assert code == 0 and "/v1/webhooks/typeform/ch_" in out
    assert f"cem: data directory {(tmp_path / '.cem').resolve()} (from default)" in err


def test_a_multi_line_secret_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from cryptography.hazmat.primitives import serialization

    from cem.distributed import channels_from_settings
    from kernel.settings import CoreSettings
    from services.ingest.channels import signing

    private, _ = signing.sendgrid_keypair()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(pem))
    code, out, _ = run(capsys, "channels", "add", "sendgrid", "--tenant", "acme", "--secret", "-",
                       "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 0
    store = channels_from_settings(CoreSettings(data_dir=tmp_path))
    assert store.secret(out.strip().rsplit("/", 1)[1]) == pem.strip()
    store.close()


def test_replaying_while_cem_up_holds_the_directory_says_so_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # chdb opens in one process: the consumers' letters cannot be replayed beside `cem up`. It
    # printed chdb's own errors and exited 0 (found by a review).
    from cem import data_dir

    with data_dir.exclusive(tmp_path):  # as `cem up` holds it
        code, out, err = run(capsys, "dead-letters", "replay", "--data-dir", str(tmp_path))
    assert code == 1 and "Traceback" not in err
    assert "webhook dead letters: 0 re-stored" in out
    assert "not replayed, `cem up` is using this data directory" in out


def test_dead_letters_take_a_date_alone_and_say_when_there_are_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert (
        run(capsys, "channels", "add", "typeform", "--tenant", "acme", "--secret", "x", *data)[0]
        == 0
    )
    code, out, err = run(capsys, "dead-letters", "list", "--since", "2026-11-10", "--provider",
                         "typeform", *data)  # fmt: skip
    assert code == 0 and out == ""
    assert "no dead letters (provider 'typeform', since '2026-11-10')" in err


def test_a_dead_letter_is_listed_with_what_is_wrong_at_each_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from cem.distributed import channels_from_settings
    from kernel.channels import NewDeadLetter
    from kernel.settings import CoreSettings

    store = channels_from_settings(CoreSettings(data_dir=tmp_path))
    channel = store.add("acme", "typeform", "x")
    problems = [
        {"path": "form_response.answers", "code": "missing", "message": "no mapped question"},
        {"path": "form_response.hidden", "code": "missing", "message": "no customer"},
    ]
    store.keep_dead_letter(NewDeadLetter("acme", "typeform", channel.channel_id,
                                         datetime(2026, 11, 10, tzinfo=UTC), "/x", {}, b"{}",
                                         "unmappable", problems))  # fmt: skip
    store.close()
    code, out, _ = run(capsys, "dead-letters", "list", "--data-dir", str(tmp_path))
    assert code == 0
    assert out.rstrip("\n").split("\t")[-2:] == [
        "unmappable",
        "form_response.answers: no mapped question; form_response.hidden: no customer",
    ]


def test_add_without_url_prints_the_address_cem_up_serves_else_says_it_is_a_placeholder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --url it printed http://127.0.0.1:8000/… while `cem up` served on another port,
    # and said nothing of it (found by a review).
    from cem import data_dir

    data = ["--data-dir", str(tmp_path)]
    add = ["channels", "add", "typeform", "--tenant", "acme", "--secret", "x", *data]
    code, out, err = run(capsys, *add)
    assert code == 0 and out.startswith("http://127.0.0.1:8000/v1/webhooks/typeform/ch_")
    assert "the host above is a placeholder" in err and "--url" in err
    with data_dir.exclusive(tmp_path), data_dir.serving(tmp_path, "http://127.0.0.1:18730"):
        code, out, err = run(capsys, *add)  # as beside a running `cem up --port 18730`
    assert code == 0 and out.startswith("http://127.0.0.1:18730/v1/webhooks/typeform/ch_")
    assert "where the running `cem up` serves this data directory" in err and "--url" in err
    assert data_dir.served_url(tmp_path) is None  # said only while it runs
    code, out, err = run(capsys, *add, "--url", "https://cx.example.com")
    assert out.startswith("https://cx.example.com/v1/webhooks/") and "placeholder" not in err


def test_a_serving_address_left_by_a_killed_cem_up_is_not_used(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from cem import data_dir

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(gone.stdout)
    (tmp_path / data_dir.LOCK_FILE).write_text(str(pid))
    (tmp_path / data_dir.SERVING_FILE).write_text(json.dumps({"pid": pid, "url": "http://h:1"}))
    assert data_dir.served_url(tmp_path) is None


def test_cem_up_says_where_it_serves_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cem import data_dir
    from cem.serving import free_port

    seen: list[str | None] = []
    monkeypatch.setattr("cem.up.run", lambda options: seen.append(data_dir.served_url(tmp_path)))
    port = free_port()
    assert main(["up", "--port", str(port), "--data-dir", str(tmp_path)]) == 0
    assert seen == [f"http://127.0.0.1:{port}"]
    assert data_dir.served_url(tmp_path) is None


def test_a_serving_address_whose_pid_lives_on_in_another_process_is_not_used(
    tmp_path: Path,
) -> None:
    # A pid outlives its process when the kernel gives it to another one (a container's pid 1):
    # what says a `cem up` runs is its lock, which the kernel releases with it (a review).
    import json
    import os

    from cem import data_dir

    (tmp_path / data_dir.LOCK_FILE).write_text(str(os.getpid()))  # alive, holding no lock
    (tmp_path / data_dir.SERVING_FILE).write_text(
        json.dumps({"pid": os.getpid(), "url": "http://h:1"})
    )
    assert data_dir.served_url(tmp_path) is None
    with data_dir.exclusive(tmp_path):  # held now, by this process
        (tmp_path / data_dir.SERVING_FILE).write_text(
            json.dumps({"pid": os.getpid(), "url": "http://h:1"})
        )
        assert data_dir.served_url(tmp_path) == "http://h:1"
    # A read-only server takes no webhook: it says no address.
    with data_dir.exclusive(tmp_path), data_dir.serving(tmp_path, ""):
        assert data_dir.served_url(tmp_path) is None


def test_a_letter_received_before_an_erasure_is_settled_erased_by_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Embedded, sealed (the default): the buyer's phone key was destroyed after the order was
    # kept, so replaying it would make the erased person's order readable again.
    from datetime import datetime

    from cem.distributed import channels_from_settings
    from cem.sealing import embedded_vault, platform_key_for
    from kernel.channels import NewDeadLetter
    from kernel.settings import CoreSettings
    from kernel.shredding import subject_key_id, tenant_keys

    fixture = json.loads(
        (
            Path(__file__).parents[1] / "fixtures" / "channels" / "shopify" / "order_online.json"
        ).read_text()
    )
    settings = CoreSettings(data_dir=tmp_path)
    store = channels_from_settings(settings)
    channel = store.add("acme", "shopify", fixture["secret"])
    kept = store.keep_dead_letter(
        NewDeadLetter("acme", "shopify", channel.channel_id,
                      datetime.fromisoformat(fixture["received_at"]),
                      fixture["url"], fixture["headers"], fixture["body"].encode(), "unmappable")
    )  # fmt: skip
    store.close()
    vault = embedded_vault(settings)
    phone = subject_key_id(tenant_keys(platform_key_for(settings), "acme"), "phone:+34600333444")
    vault.get_or_create("acme", phone)
    vault.destroy("acme", [phone])  # now: after the letter arrived
    vault.close()
    code, out, _ = run(capsys, "dead-letters", "replay", "--provider", "shopify",
                       "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 0
    assert "webhook dead letters: 0 re-stored, 0 duplicates, 0 still failing, 1 erased" in out
    code, out, _ = run(capsys, "dead-letters", "list", "--data-dir", str(tmp_path))
    assert out.split("\t")[0] == kept and out.split("\t")[4:6] == ["erased", "erased"]
