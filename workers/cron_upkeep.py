"""The register's daily upkeep jobs, for `rq cron` (imported by workers.cron)."""

from rq import cron

from usecases.bootstrap import QUEUE_NAME
from workers.upkeep import (
    record_lapses_job,
    retention_job,
    review_digest_job,
    triage_catch_up_job,
)

# Night-time, in the scheduler's local time: lapses first, so the digest and retention see them.
cron.register(record_lapses_job, queue_name=QUEUE_NAME, cron="15 2 * * *")
cron.register(review_digest_job, queue_name=QUEUE_NAME, cron="30 2 * * *")
cron.register(retention_job, queue_name=QUEUE_NAME, cron="45 2 * * *", job_timeout=3600)
# Issue 13: a voicemail the call log could not queue at once waits at most a quarter hour.
cron.register(triage_catch_up_job, queue_name=QUEUE_NAME, cron="*/15 * * * *")
