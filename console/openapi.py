"""The console API described as OpenAPI 3.0, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from callflow import ending
from callflow.call_state import CALL_SID_PATTERN
from callflow.ending import EndReason, EndRefusal
from callflow.register import Category
from callflow.roles import Role
from store.agent_pool import Availability

CALL_SID = {"type": "string", "pattern": CALL_SID_PATTERN.pattern, "example": "CA" + "0" * 32}
# The enums come from the core, so the document names exactly what the API accepts.
END_REASONS = [reason.value for reason in ending.END_REASONS]
WRAP_UP_REASONS = [reason.value for reason in ending.WRAP_UP_REASONS]
CATEGORIES = [category.value for category in Category]
ROLES = [role.value for role in Role]
AVAILABILITIES = [state.value for state in Availability]
ABUSE_REASONS = [reason.value for reason in ending.END_REASONS
                 if reason in ending.ABUSE_REASONS]
# Time to recover after an abusive call, as GET /api/me and the supervisors' list give it.
TIME_LEFT = {
    "until": {"type": "string", "format": "date-time"},
    "until_text": {"type": "string", "example": "10:05am",
                   "description": "When it ends, in the centre's time, as people read it."},
    "seconds_left": {"type": "integer", "minimum": 0},
    "time_left_text": {"type": "string", "example": "4 minutes 5 seconds"},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _body(schema: str, required: bool = True) -> dict[str, Any]:
    return {"required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


COMMON = {
    "401": _error("Not signed in, or the token is unknown, revoked or its owner disabled."),
    "403": _error("Wrong role, not on this call, or a missing/wrong CSRF token (sessions)."),
}
CALL_ERRORS = {
    **COMMON,
    "404": _error("Unknown call: no live state and no call log row."),
    "422": _error("A field is missing or not allowed; `field` names it."),
    "502": _error("Twilio refused the request; its message is given. Nothing was recorded."),
    "503": _error("Twilio (or the call store) could not be reached. Nothing was recorded."),
}
SID_PARAMETER = {"name": "CallSid", "in": "path", "required": True, "schema": CALL_SID,
                 "description": "The caller's CallSid."}
IDEMPOTENCY = (
    " Repeating the same request does no harm: it answers 200 with the first result and the "
    "header `Idempotent-Replay: true`, and nothing is done or logged twice."
)


def openapi_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI document, with this deployment as its server."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "callflow console API",
            "version": "1",
            "description": (
                "What the agent console does, for another front end (a Twilio Flex plugin, a "
                "CRM). Authenticate with `Authorization: Bearer <token>` (issued by `callflow "
                "staff token EMAIL`) or the console's session cookie; with the cookie every "
                "POST/PUT also needs the `X-CSRF-Token` header (`csrf_token` from GET /api/me). "
                "An agent acts only on the call they are on; supervisors, managers and admins "
                "on any call. Errors are `{\"error\": \"...\"}`, with `field` for a 422."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/me": {"get": {
                "summary": "Who is signed in, their availability and current call.",
                "responses": {"200": _ok("The member of staff.", "Me"), **COMMON},
            }},
            "/api/me/availability": {"put": {
                "summary": "Set availability (agents and supervisors). `busy` is set by calls.",
                "requestBody": _body("AvailabilityChange"),
                "responses": {
                    "200": _ok("Changed.", "Me"), **COMMON,
                    "409": _error("On a call: available only once it ends; or the reason for a "
                                  "call ended in one click is still owed (`wrap_up` in Me); or "
                                  "recovering after an abusive call (`recovery` in Me) where "
                                  "the centre does not allow coming back early "
                                  "(CALLFLOW_RECOVERY_EARLY_RETURN)."),
                    "422": _error("Not `available` or `away`."),
                },
            }},
            "/api/staff/recovering": {"get": {
                "summary": "Who is taking time to recover after an abusive call (supervisors).",
                "description": (
                    "After a call is ended for abuse or threats (by the agent, or as wrap-up) "
                    "the member of staff on it is offered no call for CALLFLOW_RECOVERY_MINUTES."
                ),
                "responses": {"200": _ok("Soonest back first.", "Recovering"), **COMMON},
            }},
            "/api/calls/current": {"get": {
                "summary": "The live call of the signed-in member of staff.",
                "parameters": [{"name": "call", "in": "query", "required": False,
                                "schema": CALL_SID,
                                "description": "Supervisors and up: any live call."}],
                "responses": {
                    "200": _ok("The call, or `{\"call\": null}` when there is none.",
                               "CurrentCall"),
                    **COMMON,
                    "404": _error("No such live call (with `call`)."),
                },
            }},
            "/api/calls/{CallSid}/warning": {"post": {
                "summary": "Play the standard warning to the caller alone (policy 4.5).",
                "description": (
                    "Announced to the caller's conference participant, so the agent stays "
                    "connected and hears it. Logged with who and when. A second request within "
                    "10 seconds is the same warning." + IDEMPOTENCY
                ),
                "parameters": [SID_PARAMETER],
                "responses": {
                    "200": _ok("The warning is playing.", "WarningGiven"), **CALL_ERRORS,
                    "409": _error("Call already ended, or the caller is not connected yet."),
                },
            }},
            "/api/calls/{CallSid}/end": {"post": {
                "summary": "End the call (policy 4.5; threats 4.3): one click once warned.",
                "description": (
                    f"Refused with 409 `{EndRefusal.NOT_WARNED}` unless a warning was given on "
                    f"this call, except for `{EndReason.THREAT_OR_VIOLENCE}`, which ends the "
                    "call at once and opens an incident for a manager. Otherwise the caller "
                    "hears the closing statement and the call ends. Without a `reason` (or "
                    "with an empty body) the call ends at once and its reason is owed as "
                    "wrap-up: the member of staff on the call is in `wrap-up` availability and "
                    "is offered no call until `POST /api/calls/{CallSid}/wrap-up` gives it. "
                    "Logged with who, when and why." + IDEMPOTENCY
                ),
                "parameters": [SID_PARAMETER],
                "requestBody": _body("EndCall", required=False),
                "responses": {
                    "200": _ok("Ending.", "CallEnded"), **CALL_ERRORS,
                    "409": _error("`warn before ending`, or `call already ended`."),
                },
            }},
            "/api/calls/{CallSid}/wrap-up": {"post": {
                "summary": "Give the reason for a call ended in one click (wrap-up).",
                "description": (
                    "Recorded once in the call log with who and when; its agent may then take "
                    "calls again (available, or when the caller's closing statement has "
                    "ended). The same request again gets the first answer; another reason is "
                    "a 409." + IDEMPOTENCY
                ),
                "parameters": [SID_PARAMETER],
                "requestBody": _body("WrapUp"),
                "responses": {
                    "200": _ok("Recorded.", "WrapUpRecorded"), **CALL_ERRORS,
                    "409": _error("No reason is waiting for this call, or another reason is "
                                  "already recorded."),
                },
            }},
            "/api/calls/{CallSid}/incident": {"post": {
                "summary": "Record an incident against the call for a manager (policy 4.3).",
                "parameters": [SID_PARAMETER],
                "requestBody": _body("IncidentReport"),
                "responses": {"200": _ok("Recorded.", "IncidentRecorded"), **CALL_ERRORS},
            }},
            "/api/calls/{CallSid}/proposal": {"post": {
                "summary": "Propose the caller for the register; a manager decides (5.2).",
                "parameters": [SID_PARAMETER],
                "requestBody": _body("Proposal"),
                "responses": {"200": _ok("Recorded.", "ProposalRecorded"), **CALL_ERRORS},
            }},
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from `callflow staff token EMAIL`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "callflow_session"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "field": {"type": "string"},
                    "twilio_code": {"type": "integer", "nullable": True}}},
                "Me": {"type": "object", "properties": {
                    "staff": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "email": {"type": "string"},
                        "name": {"type": "string"},
                        "role": {"type": "string",
                                 "enum": ROLES},
                        "client_identity": {"type": "string", "nullable": True}}},
                    "availability": {"type": "string", "enum": AVAILABILITIES},
                    "current_call": {"type": "string", "nullable": True},
                    "wrap_up": {"type": "object", "nullable": True,
                                "description": "The call whose reason is still owed.",
                                "properties": {"call_sid": CALL_SID}},
                    "recovery": {"type": "object", "nullable": True,
                                 "description": "Time to recover after an abusive call: no "
                                                "calls until it is over.",
                                 "properties": {**TIME_LEFT, "early_return": {
                                     "type": "boolean",
                                     "description": "Whether they may choose available "
                                                    "before it is over."}}},
                    "csrf_token": {"type": "string",
                                   "description": "Only when signed in with the cookie."}}},
                "AvailabilityChange": {"type": "object", "required": ["availability"],
                                       "properties": {"availability": {
                                           "type": "string", "enum": ["available", "away"]}}},
                "Recovering": {"type": "object", "properties": {"recovering": {
                    "type": "array", "items": {"type": "object", "properties": {
                        "staff_id": {"type": "integer"}, "name": {"type": "string"},
                        **TIME_LEFT}}}}},
                "CurrentCall": {"type": "object", "properties": {"call": {
                    "nullable": True, "allOf": [{"$ref": "#/components/schemas/LiveCall"}]}}},
                "LiveCall": {"type": "object", "properties": {
                    "call_sid": CALL_SID,
                    "number": {"type": "string", "description": "E.164, or `withheld`."},
                    "withheld": {"type": "boolean"},
                    "state": {"type": "string",
                              "example": "connected",
                              "description": "waiting, connected, message, voicemail, ended"},
                    "outcome": {"type": "string", "nullable": True},
                    "started_at": {"type": "string", "format": "date-time", "nullable": True},
                    "staff_id": {"type": "integer", "nullable": True},
                    "connected": {"type": "boolean"},
                    "warned": {"type": "boolean"},
                    "warnings": {"type": "integer"},
                    "ended_by_agent": {"type": "boolean"},
                    "register_check_failed": {"type": "boolean"},
                    "customer": {"type": "object", "nullable": True, "properties": {
                        "name": {"type": "string", "nullable": True},
                        "reference": {"type": "string"}}},
                    "person_of_interest": {"nullable": True, "allOf": [
                        {"$ref": "#/components/schemas/PersonOfInterest"}]},
                    "last_ended_for_abuse": {
                        "type": "object", "nullable": True,
                        "description": (
                            "This number's last call ended for abuse or threats, within "
                            "CALLFLOW_ABUSE_MEMORY_DAYS, whether or not it is on the register "
                            "(policy 5.2)."),
                        "properties": {
                            "when": {"type": "string", "example": "Sun 29 Nov 2026, 10am"},
                            "reason": {"type": "string",
                                       "example": "Threat or violence (4.3)"},
                            "reason_text": {"type": "string", "example": "threats or violence"},
                            "reason_code": {"type": "string", "enum": ABUSE_REASONS},
                            "call_sid": CALL_SID}}}},
                "PersonOfInterest": {"type": "object", "properties": {
                    "flag": {"type": "boolean"},
                    "categories": {"type": "array", "items": {"type": "object", "properties": {
                        "code": {"type": "string", "enum": CATEGORIES},
                        "label": {"type": "string"}}}},
                    "arrangements": {"type": "object", "properties": {
                        "call_windows": {"type": "string"},
                        "designated_contact": {"type": "string", "nullable": True},
                        "written_only": {"type": "boolean"},
                        "visits_by_appointment": {"type": "boolean"},
                        "call_limits": {"type": "string", "description":
                                        "Policy 4.6, in words; empty when none."}}},
                    "closed_issues": {
                        "type": "array", "description": "Policy 4.7: do not reopen.",
                        "items": {"type": "object", "properties": {
                            "reference": {"type": "string"}, "summary": {"type": "string"}}}},
                    "staff_notes": {"type": "string"},
                    "needs": {"type": "array", "items": {"type": "string"},
                              "description": "Reasonable adjustments, in words.",
                              "example": ["Large print", "Interpreter: Polish"]},
                    "representative": {
                        "type": "object", "nullable": True,
                        "description": "Set when the caller is one of the person's "
                                       "representatives; covered: whether the arrangements "
                                       "apply to their call.",
                        "properties": {
                            "of": {"type": "string", "example": "representative of Pat Example"},
                            "name": {"type": "string"}, "relationship": {"type": "string"},
                            "covered": {"type": "boolean"}}},
                    "reason": {"type": "string",
                               "description": "Supervisors, managers and admins only."}}},
                "WarningGiven": {"type": "object", "properties": {
                    "call_sid": CALL_SID, "warned": {"type": "boolean"},
                    "warning": {"type": "integer", "description": "1 for the first warning."},
                    "at": {"type": "string", "format": "date-time"},
                    "text": {"type": "string"}}},
                "EndCall": {"type": "object", "properties": {
                    "reason": {"type": "string", "enum": END_REASONS, "nullable": True,
                               "description": "Leave out to end a warned call at once and "
                                              "give the reason as wrap-up."},
                    "note": {"type": "string", "maxLength": 2000}}},
                "CallEnded": {"type": "object", "properties": {
                    "call_sid": CALL_SID, "ended": {"type": "boolean"},
                    "reason": {"type": "string", "enum": END_REASONS, "nullable": True},
                    "note": {"type": "string"},
                    "closing_statement": {"type": "boolean"},
                    "wrap_up_owed": {"type": "boolean"},
                    "incident_id": {"type": "integer", "nullable": True},
                    "recovery_until": {"type": "string", "format": "date-time",
                                       "nullable": True,
                                       "description": "Ended for abuse or threats: the agent "
                                                      "on the call recovers until then."},
                    "at": {"type": "string", "format": "date-time"}}},
                "WrapUp": {"type": "object", "required": ["reason"], "properties": {
                    "reason": {"type": "string", "enum": WRAP_UP_REASONS},
                    "note": {"type": "string", "maxLength": 2000}}},
                "WrapUpRecorded": {"type": "object", "properties": {
                    "call_sid": CALL_SID, "reason": {"type": "string", "enum": WRAP_UP_REASONS},
                    "note": {"type": "string"},
                    "recovery_until": {"type": "string", "format": "date-time",
                                       "nullable": True},
                    "at": {"type": "string", "format": "date-time"}}},
                "IncidentReport": {"type": "object", "required": ["category"], "properties": {
                    "category": {"type": "string", "enum": END_REASONS},
                    "police_reference": {"type": "string", "maxLength": 80},
                    "notes": {"type": "string", "maxLength": 5000}}},
                "IncidentRecorded": {"type": "object", "properties": {
                    "call_sid": CALL_SID, "incident_id": {"type": "integer"},
                    "category": {"type": "string"}, "police_reference": {"type": "string"},
                    "status": {"type": "string", "enum": ["open"]},
                    "at": {"type": "string", "format": "date-time"}}},
                "Proposal": {"type": "object", "required": ["reason", "categories"],
                             "properties": {
                                 "reason": {"type": "string", "maxLength": 5000},
                                 "categories": {"type": "array", "minItems": 1, "items": {
                                     "type": "string", "enum": CATEGORIES}},
                                 "customer_ref": {"type": "string", "maxLength": 64}}},
                "ProposalRecorded": {"type": "object", "properties": {
                    "call_sid": CALL_SID, "proposal_id": {"type": "integer"},
                    "status": {"type": "string", "enum": ["open"]},
                    "categories": {"type": "array", "items": {"type": "string"}},
                    "customer_ref": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"}}},
            },
        },
    }
