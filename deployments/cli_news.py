"""News commands: `eventdesk news test-rule ITEM_FILE [--rules FILE]`.

Invariant: `test-rule` never trades and never writes: it parses the item file with the same
parsers as the watcher (NWS alert GeoJSON, a vendor push item, or an RSS/Atom feed), matches it
against the rule file the watcher would load, and prints which rules fire and what they would do.
A bad item or rule file exits 2 with one line naming the file, the line (rules) and the reason.
The last line is one JSON object with the same information.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.news import FeedParse, NewsParseError, parse_feed, parse_push
from models.news_rules import RuleFileError, load_rules, match_item

__all__ = ["news_app", "register"]

news_app = typer.Typer(help="News feeds, rules and the news watcher.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"eventdesk: {message}", err=True)
    return typer.Exit(2)


def _parse_item_file(path: Path, source: str | None) -> FeedParse:
    data = path.read_bytes()
    if data.lstrip()[:1] == b"<":
        return parse_feed(data, source or path.stem)
    if source is not None and data.lstrip()[:1] == b"{" and b'"features"' in data:
        from models.news import parse_alerts

        return parse_alerts(data, source, max_bytes=2_000_000)
    return parse_push(data, max_bytes=2_000_000)


@news_app.command("test-rule")
def check_rules(
    item_file: Path = typer.Argument(..., help="An item: NWS alert GeoJSON, push JSON, RSS/Atom"),
    rules: Path | None = typer.Option(None, "--rules", help="Rule file (default: shipped rules)"),
    source: str | None = typer.Option(None, "--source",
                                      help="Source name of a feed or alert file (default: the "
                                           "file name for feeds, nws-alerts-push for alerts)"),
) -> None:
    """Show which rules fire on the items of ITEM_FILE and what they would do."""
    from tasks.news import DEFAULT_RULES_PATH

    rules_path = rules or DEFAULT_RULES_PATH
    try:
        ruleset = load_rules(rules_path.read_text(encoding="utf-8"), origin=str(rules_path))
    except OSError as exc:
        raise _fail(f"rules: cannot read {rules_path}: {exc.strerror}") from None
    except RuleFileError as exc:
        raise _fail(f"rules rejected: {exc}") from None
    try:
        parsed = _parse_item_file(item_file, source)
    except OSError as exc:
        raise _fail(f"item file: cannot read {item_file}: {exc.strerror}") from None
    except NewsParseError as exc:
        raise _fail(f"item file {item_file}: {exc}") from None
    typer.echo(f"rules v{ruleset.version} ({ruleset.digest}) from {rules_path}: "
               f"{len(ruleset.rules)} rules")
    report: list[dict[str, object]] = []
    for item in parsed.items:
        zones = ",".join(item.zones) or "-"
        typer.echo(f"{item.source}/{item.item_id} [{item.message_type}] {item.event or '-'}: "
                   f"{item.title[:80]} (zones {zones})")
        firings = match_item(item, ruleset)
        if not firings:
            typer.echo("  no rule fires")
        for firing in firings:
            note = " (a cancel: removes the thread's shifts; nothing is sent)" if (
                item.message_type == "Cancel") else ""
            typer.echo(f"  fires {firing.describe()}{note}")
        report.append({"item": item.item_id, "message_type": item.message_type,
                       "fires": [{"rule": f.rule_id, "effect": f.effect,
                                  "series": list(f.series), "weight": f.weight,
                                  "ttl_s": f.ttl_s} for f in firings]})
    for refusal in parsed.refused:
        typer.echo(f"{refusal.source}/{refusal.where}: refused: {refusal.reason}")
    typer.echo(json.dumps({"rules_version": ruleset.version, "rules_digest": ruleset.digest,
                           "items": report,
                           "refused": [{"id": r.where, "reason": r.reason}
                                       for r in parsed.refused]}))


def register(app: typer.Typer) -> None:
    """Add `news test-rule` to the root app."""
    app.add_typer(news_app, name="news")
