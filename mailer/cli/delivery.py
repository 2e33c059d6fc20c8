"""Delivery commands: campaigns, sending, the worker, test sends and the capture server.

Thin wrappers over the `mailer.delivery` modules campaigns, ledger, dispatch and
capture; every error is one line on stderr and exit status 1.

Kept whole for now although it is over 400 lines: one concern (a campaign from
creation to its report), its commands share the campaign store, the ledger and
the lifecycle, and it is being changed on other branches at the same time; cutting
it by what each command imports (as `mailer subscribers` is) is the next step.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mailer.app import campaigns as app_campaigns
from mailer.app.audiences import audience_from, split
from mailer.authoring.content import load_issue
from mailer.cli.common import fail, friendly_errors, opened, root, run_until_stopped
from mailer.cli.present import local_time, waves_table
from mailer.delivery import campaigns, ledger, lifecycle, owners
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.testsend import send_test
from mailer.schedule import plan
from subscribers.audience import Audience, count_audience

out = Console(highlight=False, soft_wrap=True)  # messages stay one line (scripts, tests)

CampaignArg = Annotated[int, typer.Argument(help="Campaign id (see `mailer campaign list`).")]


# --- campaign ----------------------------------------------------------------------------


def create_command(
    issue_path: Annotated[
        Path | None,
        typer.Argument(help="The issue's YAML file (or give --draft).", dir_okay=False),
    ] = None,
    draft: Annotated[
        int | None,
        typer.Option(
            "--draft",
            help="Make it from this draft's latest revision (see `mailer drafts list`).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Campaign name (default: the issue).")] = None,
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="List slug(s); none: every list.")
    ] = None,
    countries: Annotated[
        list[str] | None, typer.Option("--country", help="Only these ISO country codes.")
    ] = None,
    partners: Annotated[
        list[str] | None, typer.Option("--partner", help="Only contacts of these partners.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude-list", help="Leave out members of these lists.")
    ] = None,
    languages: Annotated[
        list[str] | None,
        typer.Option("--language", help="Only subscribers of these languages, e.g. zh,th."),
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Subject (default: the issue's).")] = None,
    sender: Annotated[
        str | None, typer.Option(help='From, e.g. "LMEC <news@x.org>" (default: the profile).')
    ] = None,
    reply_to: Annotated[str | None, typer.Option(help="Reply-To (default: the profile).")] = None,
) -> None:
    """Create a draft campaign: an issue (with all its language variants), an audience
    and a sender."""
    if (issue_path is None) == (draft is None):
        raise fail("error: give either an issue file or --draft N, not both")
    with opened() as the_root:
        issue = load_issue(issue_path) if issue_path is not None else None
        with the_root.sessions.begin() as session:
            audience = audience_from(session, lists, countries, partners, exclude, languages)
            if issue_path is not None and issue is not None:
                campaign = app_campaigns.create_from_issue(
                    session,
                    the_root.profile,
                    issue_path,
                    issue,
                    audience,
                    name=name,
                    subject=subject,
                    sender=sender,
                    reply_to=reply_to,
                )
            elif draft is not None:
                campaign = app_campaigns.create_from_draft(
                    session,
                    the_root.renderer(),
                    draft,
                    audience,
                    name=name,
                    subject=subject,
                    sender=sender,
                    reply_to=reply_to,
                )
            recipients = count_audience(session, audience)
        if campaign.draft_revision_id is not None:
            out.print(f"made from {campaign.issue_path.lstrip('/').replace('/', ' ')}")
        languages = (
            app_campaigns.variant_languages(the_root.profile, issue_path)
            if issue_path is not None
            else [campaign.language or the_root.profile.default_language]  # a draft: one
        )
        out.print(
            f"campaign {campaign.id} created (draft): {campaign.name}, "
            f"{audience.describe()}, {recipients} recipient(s) now; "
            f"variants: {', '.join(languages)}"
        )


def list_command(
    state: Annotated[list[str] | None, typer.Option(help="Only campaigns in these states.")] = None,
) -> None:
    """List campaigns, newest first, with their progress."""
    with opened() as the_root, the_root.sessions() as session:
        table = Table("id", "name", "issue", "state", "sent", "failed", "open", "scheduled")
        for campaign in campaigns.list_campaigns(session, states=split(state) or None):
            tally = ledger.progress(session, campaign.id)
            table.add_row(
                str(campaign.id),
                campaign.name,
                campaign.issue_slug,
                campaign.state,
                str(tally.sent),
                str(tally.failed),
                str(tally.pending + tally.retrying),
                local_time(campaign.scheduled_at, the_root.settings.timezone),
            )
        out.print(table)


def show_command(campaign_id: CampaignArg) -> None:
    """Show a campaign: what it sends, to whom, its state and progress."""
    with opened() as the_root, the_root.sessions() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        zone = the_root.settings.timezone
        tally = ledger.progress(session, campaign_id)
        audience = Audience.from_json(dict(campaign.audience))
        state = campaign.state + (f": {campaign.state_reason}" if campaign.state_reason else "")
        content = (
            f"frozen {local_time(campaign.frozen_at, zone)}" if campaign.frozen else "not frozen"
        )
        counts = f"{tally.sent} / {tally.retrying} / {tally.failed} / {tally.pending}"
        counts += _skipped(tally)
        rows = [
            ("name", campaign.name),
            ("issue", f"{campaign.issue_slug} ({campaign.issue_path})"),
            ("subject", campaign.frozen_subject or campaign.subject or "(the issue's)"),
            ("from", campaign.sender),
            ("reply-to", campaign.reply_to or "-"),
            ("audience", audience.describe()),
            ("state", state),
            ("content", content),
            ("scheduled", local_time(campaign.scheduled_at, zone)),
            ("waves pending", ", ".join(campaign.pending_waves) or "-"),
            ("started", local_time(campaign.started_at, zone)),
            ("finished", local_time(campaign.finished_at, zone)),
            ("recipients", str(tally.total)),
            ("sent / retrying / failed / open", counts),
        ]
        for key, value in rows:
            out.print(f"[bold]{key}[/bold]: ", end="")
            out.print(value, markup=False)


def _control(action: str, campaign_id: int, reason: str | None) -> None:
    with opened() as the_root, the_root.sessions.begin() as session:
        if action == "pause":
            campaign = lifecycle.pause(session, campaign_id, reason or "paused by operator")
        elif action == "resume":
            try:
                campaign = lifecycle.resume(session, campaign_id)
            except lifecycle.IllegalTransition as exc:  # say which command sends it
                if exc.current not in (CampaignState.SENDING, *lifecycle.FINAL):
                    raise fail(f"error: {exc} (use `mailer send {campaign_id}`)") from None
                raise
        else:
            campaign = lifecycle.cancel(session, campaign_id, reason or "cancelled by operator")
        out.print(f"campaign {campaign.id} is {campaign.state}")


def pause_command(
    campaign_id: CampaignArg, reason: Annotated[str | None, typer.Option(help="Why.")] = None
) -> None:
    """Pause sending; messages already on the wire finish, nothing new goes out."""
    _control("pause", campaign_id, reason)


def resume_command(campaign_id: CampaignArg) -> None:
    """Resume a paused campaign (a running worker picks it up)."""
    _control("resume", campaign_id, None)


def cancel_command(
    campaign_id: CampaignArg, reason: Annotated[str | None, typer.Option(help="Why.")] = None
) -> None:
    """Cancel for good; recipients not reached yet are never sent to."""
    _control("cancel", campaign_id, reason)


def _skipped(tally: ledger.Tally) -> str:
    """Rows skipped because the person left after they were queued, when there are any."""
    return f"; {tally.skipped} skipped (left after it was queued)" if tally.skipped else ""


def _tally_table(title: str, tallies: list[ledger.Tally], names: dict[str, str]) -> Table:
    columns = ("", "recipients", "sent", "retrying", "open", "failed", "skipped")
    table = Table(*columns, title=title)
    for tally in tallies:
        label = names.get(tally.key, tally.key) or "(none)"
        table.add_row(
            label,
            str(tally.total),
            str(tally.sent),
            str(tally.retrying),
            str(tally.pending),
            str(tally.failed),
            str(tally.skipped),
        )
    return table


def report_command(
    campaign_id: CampaignArg,
    failures_csv: Annotated[
        Path | None, typer.Option("--failures-csv", help="Write failed recipients to this CSV.")
    ] = None,
) -> None:
    """Sent, retrying and failed, in total and per country, partner and time zone."""
    with opened() as the_root, the_root.sessions() as session:
        result = app_campaigns.report(session, campaign_id)
        campaign, total = result.campaign, result.ledger.total
        out.print(
            f"campaign {campaign.id} ({campaign.name}) is {campaign.state}: "
            f"{total.sent} sent, {total.retrying} retrying, {total.pending} open, "
            f"{total.failed} failed, of {total.total}{_skipped(total)}"
        )
        for held in owners.held_by_dead(session, campaign_id):  # after a crash
            out.print(owners.lease_note(held, the_root.clock()), markup=False)
        out.print(_tally_table("per country", result.ledger.by_country, {}))
        out.print(_tally_table("per partner", result.ledger.by_partner, result.partner_names))
        out.print(_tally_table("per time zone (scheduler waves)", result.ledger.by_timezone, {}))
        out.print(_tally_table("per language", result.ledger.by_language, {}))
        waves = waves_table(plan.waves_report(session, campaign_id), the_root.settings.timezone)
        if waves is not None:
            out.print(waves)
        if failures_csv is not None:
            try:
                handle = failures_csv.open("w", newline="", encoding="utf-8")
            except OSError as exc:
                raise fail(f"error: {failures_csv}: cannot write: {exc.strerror}") from None
            with handle:
                count = app_campaigns.write_failures_csv(session, campaign_id, handle)
            out.print(f"{count} failed recipient(s) written to {failures_csv}")


def history_command(
    email: Annotated[str, typer.Argument(help="The address, any case.")],
) -> None:
    """Every campaign an address was in, with what happened: "did they get issue 15?"."""
    with opened() as the_root, the_root.sessions() as session:
        rows = app_campaigns.history(session, email)
        if not rows:
            out.print(f"{email}: in no campaign's ledger", markup=False)
            return
        table = Table("campaign", "issue", "status", "attempts", "sent", "last reply")
        for row, campaign in rows:
            table.add_row(
                f"{campaign.id} {campaign.name}",
                campaign.issue_slug,
                row.status,
                str(row.attempts),
                local_time(row.sent_at, the_root.settings.timezone),
                row.last_reply or "",
            )
        out.print(table)


# --- sending -----------------------------------------------------------------------------


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "- msg/s")


def send_command(
    campaign_id: CampaignArg,
    connections: Annotated[
        int | None, typer.Option(help="SMTP connections (default: MAILER_SMTP_CONNECTIONS).")
    ] = None,
) -> None:
    """Start sending a campaign now and send it to the end, with a progress bar."""
    with opened() as the_root:
        if connections:
            the_root.settings.smtp_connections = connections
        probe = the_root.transport()
        probe.probe()  # a wrong password or an unreachable server: say so, send nothing
        probe.close()
        with the_root.sessions() as session:
            current = campaigns.get_campaign(session, campaign_id)
        if current.state == CampaignState.PAUSED:
            why = f" ({current.state_reason})" if current.state_reason else ""
            raise fail(
                f"error: campaign {campaign_id} is paused{why}; resume it first: "
                f"mailer campaign resume {campaign_id}"
            )
        added = lifecycle.start_sending(
            the_root.sessions, campaign_id, renderer=the_root.renderer()
        )
        with the_root.sessions() as session:
            total = ledger.progress(session, campaign_id).total
        out.print(f"campaign {campaign_id}: {added} recipient(s) enqueued, {total} in all")
        worker = the_root.worker()
        stop = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                worker.run(stop)
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        thread = threading.Thread(target=work, name="worker", daemon=True)
        thread.start()
        columns = [
            TextColumn("[bold]sending"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ]
        state = CampaignState.SENDING
        try:
            with Progress(*columns, console=out, transient=False) as progress:
                task = progress.add_task("send", total=total)
                while True:
                    with the_root.sessions() as session:
                        tally = ledger.progress(session, campaign_id)
                        state = CampaignState(campaigns.get_campaign(session, campaign_id).state)
                    progress.update(task, completed=tally.done)
                    if state != CampaignState.SENDING or stop.is_set():
                        break
                    time.sleep(0.25)
        finally:
            stop.set()
            thread.join()
        if errors:
            raise errors[0]
        with the_root.sessions() as session:
            campaign = campaigns.get_campaign(session, campaign_id)
            tally = ledger.progress(session, campaign_id)
        reason = f" ({campaign.state_reason})" if campaign.state_reason else ""
        out.print(
            f"campaign {campaign_id} is {campaign.state}{reason}: {tally.sent} sent, "
            f"{tally.failed} failed, {tally.retrying + tally.pending} still open{_skipped(tally)}"
        )
        if campaign.state == CampaignState.PAUSED:
            out.print("a running `mailer worker` resumes it when the server answers again")


def worker_command(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
) -> None:
    """Send due messages of every campaign, until stopped (Ctrl-C or SIGTERM).

    Its rate limits are its own: with N workers, set MAILER_SMTP_RATE_* to the relay's limit / N.
    """
    with opened() as the_root:
        worker = the_root.worker()
        stop = threading.Event()

        def stop_now(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stop_now)
        signal.signal(signal.SIGINT, stop_now)
        out.print(f"worker {worker.name}: sending to {the_root.transport().where}", markup=False)
        sys.stdout.flush()
        worker.run(stop, until_idle=once)


def test_send_command(
    issue_path: Annotated[Path, typer.Argument(help="The issue's YAML file.", dir_okay=False)],
    to: Annotated[str, typer.Option("--to", help="Comma-separated addresses.")],
) -> None:
    """Send an issue to a few addresses, subject marked [TEST]; no campaign, no ledger."""
    addresses = [a.strip() for a in to.split(",") if a.strip()]
    if not addresses:
        raise fail("error: --to: give at least one address")
    with opened() as the_root:
        rendered = the_root.renderer().render(load_issue(issue_path))
        replies = send_test(
            the_root.identity(),
            the_root.profile,
            the_root.transport,
            rendered,
            [(a, None) for a in addresses],
        )
        for address, reply in replies:
            out.print(f"{address}: {reply}", markup=False)


# --- capture -------------------------------------------------------------------------------


def capture_command(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: MAILER_SMTP_PORT).")] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="List captured messages and exit.")
    ] = False,
) -> None:
    """Run a local SMTP server that stores every message as an .eml file (demos, tests)."""
    from mailer.delivery.capture import capture_server, list_captured

    with friendly_errors():
        settings = root().settings
        directory = settings.resolved_capture_dir
        if list_only:
            table = Table("received", "from", "to", "subject", "file")
            for item in list_captured(directory):
                table.add_row(
                    local_time(item.received, settings.timezone),
                    item.sender,
                    item.recipients,
                    item.subject,
                    item.path.name,
                )
            out.print(table)
            return
        listen_host = host or "127.0.0.1"
        listen_port = port or settings.smtp_port
        run_until_stopped(
            capture_server(directory, listen_host, listen_port),
            f"capturing mail on {listen_host}:{listen_port} into {directory}",
        )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root command and to `mailer campaign`.

    The `campaign` group's own help is in mailer.cli.main, with its other commands."""
    campaign_app = typer.Typer()
    app.add_typer(campaign_app, name="campaign")
    campaign_app.command(
        "create",
        epilog="Examples: mailer campaign create examples/issues/2022-15.yaml --list newsletter "
        "--country VN,LA   (or --language zh,th; every language variant of the issue is sent,"
        " each subscriber theirs); mailer campaign create --draft 4 --list newsletter (the"
        " draft's latest revision, which the campaign keeps; it must pass `mailer check`)",
    )(create_command)
    campaign_app.command("list", epilog="Example: mailer campaign list --state sending")(
        list_command
    )
    campaign_app.command("show", epilog="Example: mailer campaign show 3")(show_command)
    campaign_app.command("history", epilog="Example: mailer campaign history le@monre.gov.vn")(
        history_command
    )
    campaign_app.command("pause", epilog='Example: mailer campaign pause 3 --reason "typo"')(
        pause_command
    )
    campaign_app.command("resume", epilog="Example: mailer campaign resume 3")(resume_command)
    campaign_app.command("cancel", epilog="Example: mailer campaign cancel 3")(cancel_command)
    campaign_app.command(
        "report", epilog="Example: mailer campaign report 3 --failures-csv failed.csv"
    )(report_command)
    app.command("send", epilog="Example: mailer send 3")(send_command)
    app.command(
        "worker", epilog="Example: mailer worker   (run several, on PostgreSQL, to scale out)"
    )(worker_command)
    app.command(
        "test-send",
        epilog="Example: mailer test-send examples/issues/2022-15.yaml --to me@x.org,you@y.org",
    )(test_send_command)
    app.command(
        "capture", epilog="Example: mailer capture --port 2525   |   mailer capture --list"
    )(capture_command)
