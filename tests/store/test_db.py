"""The database adapter keeps personal data out of its errors."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from store.db import transaction
from store.models import DeadLetter
from tests.conftest import NOW


def test_a_database_error_does_not_carry_the_values_that_caused_it(services):
    def letter() -> DeadLetter:
        return DeadLetter(stream_id="1-1", call_sid=None, fields='{"name": "Pat Example"}',
                          error_type="DataError", error="refused", failed_at=NOW)

    with transaction(services.sessions) as session:
        session.add(letter())
    with pytest.raises(IntegrityError) as refused:
        with transaction(services.sessions) as session:
            session.add(letter())
    assert "Pat Example" not in str(refused.value)
    assert "hidden due to hide_parameters" in str(refused.value)
