"""`cem channels …` and `cem dead-letters …`: configure provider channels, list and replay dead
letters. Mistakes are one line on stderr and a non-zero exit (`CliError`)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cem import data_dir
from cem.cli_errors import CliError
from cem.cli_format import Formatter
from kernel.channels import ChannelStore
from kernel.settings import IngestSettings
from kernel.tenants import check_tenant_id


def _settings(args: argparse.Namespace, create: bool = False) -> IngestSettings:
    """The settings of the store the command works on, said aloud (the data directory, or
    PostgreSQL). Only `channels add` creates a data directory: the others, run from another
    directory than `cem up`'s, are one line saying so, not a new empty store."""
    core = data_dir.store_settings(args.data_dir, "channels and dead letters", create)
    return IngestSettings(data_dir=core.data_dir)


def _store(settings: IngestSettings) -> ChannelStore:
    from cem.distributed import channels_from_settings

    return channels_from_settings(settings)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        since = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {text!r} is not a date or RFC 3339 time") from None
    if since.tzinfo is None and len(text) == len("2026-11-10"):
        return since.replace(tzinfo=UTC)  # a date alone: its midnight in UTC
    if since.tzinfo is None:
        raise CliError("--since needs a UTC offset, e.g. 2026-11-10T00:00:00Z (or a date alone)")
    return since


def _channel_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--settings '{"questions": …}' or --settings @file.json."""
    text = args.settings or "{}"
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--settings: cannot read {text[1:]!r}: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--settings is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise CliError("--settings must be a JSON object")
    return value


def _secret(args: argparse.Namespace) -> str:
    """--secret VALUE, or --secret - to read it from stdin (kept out of the shell history)."""
    # All of stdin: a SendGrid verification key may be a multi-line PEM.
    secret: str = sys.stdin.read().strip() if args.secret == "-" else args.secret
    if not secret:
        raise CliError("--secret is empty")
    return secret


def channels_add(args: argparse.Namespace) -> int:
    _known_provider(args.provider, kafka=False)
    check_tenant_id(args.tenant)
    given = _public_base(args.url) if args.url is not None else None
    secret, settings = _secret(args), _channel_settings(args)  # their mistakes come first
    settings = _checked(args.provider, settings)
    _check_secret(args.provider, secret)
    found = _settings(args, create=True)
    store = _store(found)
    try:
        config = store.add(args.tenant, args.provider, secret, name=args.name,
                           settings=settings)  # fmt: skip
    finally:
        store.close()
    base, note = (given, "") if given else _local_base(found.data_dir)
    print(f"{base}/v1/webhooks/{config.provider}/{config.channel_id}")
    print(f"channel {config.channel_id} · tenant {config.tenant_id} · provider "
          f"{config.provider}: give the URL above to {config.provider} as its webhook URL",
          file=sys.stderr)  # fmt: skip
    if note:
        print(note, file=sys.stderr)
    return 0


PLACEHOLDER_BASE = "http://127.0.0.1:8000"
PUBLIC_HINT = "pass --url with the address the provider reaches, e.g. --url https://cx.example.com"


def _local_base(path: Path) -> tuple[str, str]:
    """Without --url: the address `cem up` serves this data directory at, when it runs (it says
    so in the directory), else a placeholder; either way a line saying which, since a provider
    on the internet reaches neither."""
    served = data_dir.served_url(path)
    if served:
        return served, (
            f"cem: {served} is where the running `cem up` serves this data directory; a provider "
            f"outside this network cannot reach it: {PUBLIC_HINT}"
        )
    return PLACEHOLDER_BASE, (
        f"cem: the host above is a placeholder ({PLACEHOLDER_BASE}): no `cem up` is running on "
        f"this data directory to say its address; {PUBLIC_HINT}"
    )


def _checked(provider_name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as the provider reads them; a field it cannot use is a one-line mistake."""
    from services.ingest.channels.registry import BadSettings, check_settings, provider

    adapter = provider(provider_name)
    if adapter is None:
        return settings
    try:
        return check_settings(adapter, settings)
    except BadSettings as exc:
        raise CliError(f"--settings: {exc}") from None


def _check_secret(provider_name: str, secret: str) -> None:
    """A secret the provider can tell is unusable (a SendGrid key that is no ECDSA public key) is
    a one-line mistake, never repeating the secret."""
    from services.ingest.channels.registry import BadSecret, check_secret, provider

    adapter = provider(provider_name)
    try:
        if adapter is not None:
            check_secret(adapter, secret)
    except BadSecret as exc:
        raise CliError(f"--secret: {exc}") from None


def _public_base(url: str) -> str:
    """--url as the provider will reach it: an http(s) URL with a host, without a trailing /."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"--url {url!r} is not an http(s) URL, e.g. https://cem.example.com")
    if parts.query or parts.fragment:
        raise CliError(f"--url {url!r}: give the base URL alone, without ? or #")
    return url.strip().rstrip("/")


def channels_list(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        for config in store.list(args.tenant):
            print("\t".join([config.channel_id, config.provider, config.name,
                             config.created_at.isoformat(), json.dumps(dict(config.settings))]))  # fmt: skip
    finally:
        store.close()
    return 0


def channels_set(args: argparse.Namespace) -> int:
    settings = _channel_settings(args)
    store = _store(_settings(args))
    try:
        found = store.get(args.channel_id)
        if found is None or found.tenant_id != args.tenant:
            raise CliError(f"tenant {args.tenant!r} has no channel {args.channel_id!r}")
        settings = _checked(found.provider, settings)
        if store.update_settings(args.tenant, args.channel_id, settings) is None:
            raise CliError(f"tenant {args.tenant!r} has no channel {args.channel_id!r}")
    finally:
        store.close()
    return 0


def channels_remove(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        if not store.remove(args.tenant, args.channel_id):
            raise CliError(f"tenant {args.tenant!r} has no channel {args.channel_id!r}")
    finally:
        store.close()
    return 0


def _filtered(args: argparse.Namespace) -> str:
    said = [
        f"{name} {value!r}"
        for name, value in (
            ("tenant", args.tenant),
            ("provider", args.provider),
            ("since", args.since),
        )
        if value
    ]
    return f" ({', '.join(said)})" if said else ""  # fmt: skip


def _known_provider(name: str | None, *, kafka: bool = True) -> None:
    """None, a provider's name, or (`kafka`) the consumers' dead letters."""
    from services.ingest.channels.registry import load_providers

    providers = load_providers()
    if name is None or name in providers or (kafka and name == "kafka"):
        return
    also = " (or kafka)" if kafka else ""
    raise CliError(f"unknown provider {name!r}; one of: {', '.join(providers)}{also}")


def dead_letters_list(args: argparse.Namespace) -> int:
    _known_provider(args.provider)
    store = _store(_settings(args))
    try:
        letters = store.dead_letters(provider=args.provider, tenant_id=args.tenant,
                                     since=_since(args.since), status=None)  # fmt: skip
    finally:
        store.close()
    if not letters:
        print("no dead letters" + _filtered(args), file=sys.stderr)
    for d in letters:
        # Each violated path with what is wrong there (the path alone left the reason unsaid).
        said = "; ".join(f"{v.get('path', '')}: {v.get('message', '')}".rstrip(": ")
                         for v in d.violations)  # fmt: skip
        print("\t".join([d.dead_letter_id, d.received_at.isoformat(), d.tenant_id, d.provider,
                         d.status, d.reason, said]))  # fmt: skip
    return 0


def dead_letters_replay(args: argparse.Namespace) -> int:
    from cem.dead_letter_replay import mode_publisher
    from cem.platform_keys import shared_bucket_key
    from services.ingest.channels.replay import replay_webhooks

    _known_provider(args.provider)
    since = _since(args.since)
    settings = _settings(args)
    store = _store(settings)
    try:
        bucket_key = shared_bucket_key(settings)
        with mode_publisher(settings) as (publisher, log):
            report = replay_webhooks(store, publisher, bucket_key=bucket_key,
                                     provider=args.provider,
                                     tenant_id=args.tenant, since=since,
                                     max_event_bytes=settings.max_event_bytes)  # fmt: skip
            print(report.line("webhook dead letters"))
            replayed = True
            if args.provider in (None, "kafka"):
                line, replayed = _replay_consumers(settings, log, args.tenant, since, bucket_key)
                print(line)
    finally:
        store.close()
    return 0 if replayed else 1


def _replay_consumers(
    settings: IngestSettings, log: Any, tenant: str | None, since: Any, bucket_key: bytes
) -> tuple[str, bool]:
    """The report's line, and whether the consumers' letters could be replayed at all."""
    from cem.dead_letter_replay import consumer_letters, mode_warehouse, replay_consumer_letters

    if settings.mode != "distributed":
        # chdb opens in one process only: while `cem up` holds the data directory, say so
        # rather than let chdb fail (and print its own errors) trying.
        try:
            with data_dir.exclusive(settings.data_dir):
                pass
        except CliError:
            return (
                "consumer dead letters: not replayed, `cem up` is using this data directory "
                "(chdb serves one process); stop it first, then run this again",
                False,
            )
    try:
        warehouse = mode_warehouse(settings)
    except Exception as exc:  # chdb refuses a second process; a server may be down
        reason = str(exc).splitlines()[0][:160]
        hint = (
            ""
            if settings.mode == "distributed"
            else "; stop `cem up` first (chdb serves one process)"
        )
        return (
            f"consumer dead letters: not replayed, the warehouse did not open ({reason}){hint}",
            False,
        )
    try:
        rows = consumer_letters(warehouse, since)
    finally:
        warehouse.close()
    from cem.sealing import opener_for

    opener = opener_for(settings)
    try:
        report = replay_consumer_letters(rows, log, tenant, bucket_key=bucket_key, opener=opener)
    finally:
        opener.close()
    return report.line("consumer dead letters", erasures=False), True


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="where the embedded state lives (default: $CEM_DATA_DIR, else ./.cem)",
    )


def _filters(p: argparse.ArgumentParser) -> None:
    _data_dir(p)
    p.add_argument(
        "--provider", default=None, help="only this provider's (`kafka`: only the consumers')"
    )
    p.add_argument("--tenant", default=None, help="only this tenant's")
    p.add_argument(
        "--since",
        default=None,
        help="only those received since (RFC 3339, e.g. 2026-11-10T00:00:00Z)",
    )


def add_commands(sub: Any) -> None:
    channels = _command(sub, "channels", "configure provider webhooks (Twilio, Shopify, …)")
    verbs = channels.add_subparsers(dest="channels", required=True)
    add = _command(verbs, "add", "add a channel and print its webhook URL")
    add.add_argument("provider", help="the provider (see GET /v1/channels/providers)")
    add.add_argument("--tenant", required=True, help="tenant the channel feeds")
    add.add_argument("--secret", required=True, help="the provider's signing secret (`-`: stdin)")
    add.add_argument("--name", default="", help="a label to recognise the channel by")
    add.add_argument("--settings", default=None, help="channel settings as JSON, or @file.json")
    add.add_argument(
        "--url",
        default=None,
        help="the ingest's base URL as the provider reaches it (default: the address the running "
        "`cem up` serves this data directory at, else a placeholder, said so)",
    )
    _data_dir(add)
    add.set_defaults(func=channels_add)
    lst = _command(verbs, "list", "list a tenant's channels (never their secrets)")
    lst.add_argument("--tenant", required=True, help="tenant whose channels to list")
    _data_dir(lst)
    lst.set_defaults(func=channels_list)
    put = _command(verbs, "set", "replace a channel's settings (then replay its dead letters)")
    put.add_argument("channel_id", help="the id `cem channels list` shows")
    put.add_argument("--tenant", required=True, help="tenant of the channel")
    put.add_argument("--settings", required=True, help="channel settings as JSON, or @file.json")
    _data_dir(put)
    put.set_defaults(func=channels_set)
    rm = _command(verbs, "remove", "stop accepting a channel's webhooks")
    rm.add_argument("channel_id", help="the id `cem channels list` shows")
    rm.add_argument("--tenant", required=True, help="tenant of the channel")
    _data_dir(rm)
    rm.set_defaults(func=channels_remove)

    letters = _command(sub, "dead-letters", "list or replay dead letters")
    verbs = letters.add_subparsers(dest="dead_letters", required=True)
    show = _command(verbs, "list", "webhook dead letters, with every violated path")
    _filters(show)
    show.set_defaults(func=dead_letters_list)
    replay = _command(verbs, "replay", "re-run dead letters after a mapping fix")
    _filters(replay)
    replay.set_defaults(func=dead_letters_replay)


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, formatter_class=Formatter
    )
    return parser
