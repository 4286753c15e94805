"""The console: server-rendered pages over `hub.web.admin.service` (a few lines of JavaScript only
to select all rows). Every form posts with the session's CSRF token; every action is audited
with the operator's name."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from hub.clock import aware
from hub.errors import UnknownRoute
from hub.ops import records
from hub.store.models import utcnow
from hub.web.admin import service
from hub.web.admin.auth import NotAuthorized, check_csrf, csrf_token
from hub.web.admin.charts import bar_chart
from hub.web.admin.parts import console, gate

blueprint = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
                      static_folder="static", static_url_path="/static")

PUBLIC = {"admin.login", "admin.static"}


@blueprint.before_request
def _authorize() -> Response | None:
    if request.endpoint in PUBLIC:
        return None
    try:
        g.operator = gate().authorize()
    except NotAuthorized:
        return redirect(url_for("admin.login", next=request.full_path))
    if request.method == "POST":
        check_csrf()
    return None


@blueprint.errorhandler(NotAuthorized)
def _forbidden(error: NotAuthorized) -> tuple[str, int]:
    return render_template("admin/login.html", error=error.message, next=request.path), 403


@blueprint.app_template_global()
def csrf() -> Markup:
    return Markup(f'<input type="hidden" name="csrf" value="{csrf_token()}">')


@blueprint.app_template_filter("ms")
def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms")


@blueprint.app_template_filter("pct")
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


@blueprint.app_template_filter("when")
def _when(value: datetime | str | None, millis: bool = False) -> Markup | str:
    """A moment as ``2026-12-07 14:24:05 UTC`` (``.123`` with ``millis``), in a ``<time>``."""
    if value is None or value == "":
        return ""
    moment = aware(datetime.fromisoformat(value) if isinstance(value, str) else value)
    assert moment is not None
    moment = moment.astimezone(timezone.utc)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        shown += f".{moment.microsecond // 1000:03d}"
    return Markup('<time datetime="{}">{} UTC</time>').format(
        moment.isoformat(timespec="milliseconds" if millis else "seconds"), shown)


@blueprint.app_template_filter("age")
def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = request.values.get("next") or url_for("admin.overview")
    if not target.startswith("/admin"):
        target = url_for("admin.overview")  # no open redirect
    if request.method == "POST":
        try:
            gate().sign_in(request.form.get("name", ""), request.form.get("token", ""))
        except NotAuthorized as exc:
            return render_template("admin/login.html", error=exc.message, next=target), 403
        return redirect(target)
    return render_template("admin/login.html", error=None, next=target)


@blueprint.post("/logout")
def logout() -> Response:
    from flask import session

    session.clear()
    return redirect(url_for("admin.login"))


@blueprint.get("/")
def overview() -> str:
    data = console().overview()
    points = console().chart_points(minutes=60)
    chart = bar_chart([(p.at, p.succeeded, p.failed) for p in points],
                      title="Agency attempts per minute, last hour (green answered, red failed)")
    work = [q for q in data["queues"] if q["kind"] == "work"]
    side = {q["owner"]: q for q in data["queues"] if q["kind"] == "dlq"}
    retry: dict[str, int] = {}
    for q in data["queues"]:
        if q["kind"] == "retry":
            retry[q["owner"]] = retry.get(q["owner"], 0) + (q["messages"] or 0)
    return render_template("admin/overview.html", data=data, chart=Markup(chart), work=work,
                           dlq=side, retry=retry, refresh=10, now=utcnow())


@blueprint.get("/dead-letters")
def dead_letters() -> str:
    status = request.args.get("status", "parked")
    flt = service.DeadLetterFilter(
        status=None if status == "all" else status, queue=request.args.get("queue") or None,
        error_code=request.args.get("code") or None,
        correlation_id=(request.args.get("case") or "").strip().upper() or None)
    return render_template("admin/dead_letters.html", rows=console().dead_letters(flt),
                           flt=flt, status=status, summary=console().dead_letter_summary())


@blueprint.post("/dead-letters/replay")
def replay() -> Response:
    if request.form.get("all"):
        ids = console().matching_ids(service.DeadLetterFilter(
            queue=request.form.get("queue") or None, error_code=request.form.get("code") or None,
            correlation_id=request.form.get("case") or None))
    else:
        ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()]
    if not ids:
        flash("Select at least one dead letter to replay.", "warning")
    else:
        result = console().replay(ids, actor=g.operator.actor)
        message = f"Replayed {len(result['replayed'])} of {result['requested']} dead letters."
        if result["skipped"]:
            message += f" Not parked any more (skipped): {', '.join(map(str, result['skipped']))}."
        flash(message, "ok")
    back = request.form.get("back") or url_for("admin.dead_letters")
    return redirect(back if back.startswith("/admin") else url_for("admin.dead_letters"))


@blueprint.get("/trace")
def trace() -> str:
    query = request.args.get("q", "").strip()
    found = console().trace(query) if query else None
    return render_template("admin/trace.html", q=query, trace=found, now=utcnow(),
                           refresh=5 if found is not None and found.in_flight else None)


@blueprint.get("/records")
def operational_records() -> str:
    minutes = request.args.get("minutes", default=60, type=int) or 60
    query = records.RecordQuery(
        since=utcnow() - timedelta(minutes=minutes), agency=request.args.get("agency") or None,
        service=request.args.get("service") or None,
        outcome=request.args.get("outcome") or None, limit=200)
    rows = console().find_records(query)
    return render_template("admin/records.html", rows=rows,
                           callbacks=console().callback_answers(
                               [r.message_id for r in rows if r.outcome == "pending"]),
                           query=query, minutes=minutes, agencies=console().agency_names(),
                           services=console().service_names(),
                           outcomes=records.OUTCOMES)


@blueprint.post("/connectors/<agency>/<action>")
def connector(agency: str, action: str) -> Response:
    if agency not in console().agencies or action not in ("pause", "resume"):
        raise UnknownRoute(f"no {action} for {agency}")
    (console().pause if action == "pause" else console().resume)(
        f"connector.{agency}", actor=g.operator.actor)
    flash(f"{agency}: {'paused, its messages wait in the queue' if action == 'pause' else 'resumed'}.",
          "ok")
    return redirect(url_for("admin.overview"))


@blueprint.post("/maintenance")
def maintenance() -> Response:
    on = request.form.get("on") == "1"
    console().set_maintenance(on, actor=g.operator.actor)
    flash("Maintenance mode on: /readyz answers 503." if on else "Maintenance mode off.", "ok")
    return redirect(url_for("admin.overview"))
