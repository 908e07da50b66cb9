"""Twilio's webhook form keys and values, named once."""

CALL_SID = "CallSid"
FROM = "From"
TO = "To"
DIGITS = "Digits"
CALL_STATUS = "CallStatus"
CALL_DURATION = "CallDuration"
DIAL_CALL_STATUS = "DialCallStatus"
RECORDING_URL = "RecordingUrl"
RECORDING_SID = "RecordingSid"
RECORDING_DURATION = "RecordingDuration"
CONFERENCE_SID = "ConferenceSid"
FRIENDLY_NAME = "FriendlyName"
STATUS_CALLBACK_EVENT = "StatusCallbackEvent"
SEQUENCE_NUMBER = "SequenceNumber"
TIMESTAMP = "Timestamp"

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"

# Call statuses after which a leg is over, and those meaning it was never answered.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
UNANSWERED_STATUSES = frozenset({"busy", "failed", "no-answer", "canceled"})
