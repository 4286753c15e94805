"""Service definitions: each consular service is data, one YAML file in ``definitions/``.

A definition names the intake schema, the case state machine and the route::

    name: driving_licence_authentication
    version: "1"
    reference_prefix: DLA                 # case references look like DLA-2026-7K3M9QX
    intake_schema: v1/services/driving_licence_authentication.json
    feature_flag: null                    # or a flag name: enabled by HUB_FEATURES=<flag>
    states:
      submitted: {initial: true}
      verifying: {}
      rejected: {final: true,             # staff moving a case here give one of these reasons
                 staff_reasons: [licence_not_authentic, documents_not_authentic]}
    transitions:                          # who may move a case: hub, staff, applicant, agency
      - {from: submitted, to: verifying, by: [hub]}
    route:
      start_status: verifying             # the case's status while the route runs
      complete_status: verified           # when every step continued
      steps:
        - name: licence_check
          agency: narsa
          operation: verify_licence
          after: []                       # steps that must have continued first (parallel if none)
          on_status: []                   # or: dispatched when the case enters one of these
          input: [licence, holder]        # the only case fields the agency receives; or a
                                          # mapping {payload path: case path} that renames
          outcomes:
            authentic: continue
            not_authentic: {status: rejected, reason: licence_not_authentic}
          keep: [licence_status]          # answer fields the case keeps (agency_answers.<step>),
                                          # shown to staff; the intake schema must accept them

Beyond the route, a definition may carry:

- **local steps**: a step whose ``agency`` is ``hub`` runs inside the hub, at once and in the same
  transaction, instead of going to an agency (e.g. ``find_record``: is there a current consular
  registration for this person?). Its operations are listed in `hub.services.checks` and in
  ``docs/exchanges.md``; a local step waits for no other step (no ``after``).
- **deadlines**: timers the scheduler (`hub.cases.deadlines`) applies to cases left in a status::

      deadlines:
        - status: refused              # while the case stays in this status ...
          after_days: 10               # ... for this many days after entering it,
          to: deemed_served            # the hub moves it here (a transition by hub must exist)
          reason: deemed_served_after_refusal
          remind_before_days: []       # reminders to the applicant this many days before
          updates:                     # case fields recorded with the move
            delivery.outcome: deemed_served
            delivery.date: $due_date   # the day the deadline fell due

- **record**: cases of this service in these statuses are a current record of a kind that other
  services look up (``record: {kind: consular_registration, statuses: [registered],
  subject: person}``).
- **guide**: the consular reference guide's entry: title, summary, who applies, eligibility,
  fees, processing steps, whether an appointment is needed (English message ids translated by
  the catalogs; the required documents come from the intake schema, see `hub.web.guide`).

Adding a service is a new definition file, an intake schema, mappings for any new agency
operation and translations; no Python. `ServiceCatalog` loads and checks them all once.
"""
from hub.services.catalog import ServiceCatalog, parse_definition
from hub.services.definition import (ANSWERS_KEY, LOCAL_AGENCY, Deadline, Effect, Fees, Guide,
                                     RecordSpec, Role, Route, ServiceDefinition, StateInfo, Step,
                                     Transition)

__all__ = ["ANSWERS_KEY", "LOCAL_AGENCY", "Deadline", "Effect", "Fees", "Guide", "RecordSpec",
           "Role", "Route", "ServiceCatalog", "ServiceDefinition", "StateInfo", "Step",
           "Transition", "parse_definition"]
