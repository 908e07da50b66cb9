"""The start-up banner shows REDIS_URL without its passwords."""

from __future__ import annotations

import pytest

from service.runner import banner, masked_redis_url


@pytest.mark.parametrize(("given", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://user@redis.example.net/0", "redis://user@redis.example.net/0"),
    ("redis://:s3cret@redis.example.net:6379/0", "redis://:***@redis.example.net:6379/0"),
    ("rediss://callflow:p%40ss@redis.example.net:6380/0?ssl_ca_certs=/etc/callflow/ca.pem"
     "&ssl_cert_reqs=required",
     "rediss://callflow:***@redis.example.net:6380/0?ssl_ca_certs=/etc/callflow/ca.pem"
     "&ssl_cert_reqs=required"),
    ("redis+sentinel://callflow:dataPW@s1:26379,s2:26379,s3:26379/callflow/0"
     "?sentinel_password=sentinelPW&socket_timeout=1",
     "redis+sentinel://callflow:***@s1:26379,s2:26379,s3:26379/callflow/0"
     "?sentinel_password=***&socket_timeout=1"),
    ("rediss+sentinel://s1:26379/callflow/0?Sentinel_Password=sentinelPW",
     "rediss+sentinel://s1:26379/callflow/0?Sentinel_Password=***"),
    ("unix:///run/redis.sock?db=0&password=sockPW", "unix:///run/redis.sock?db=0&password=***"),
    ("redis://odd:pa:ss@word@redis.example.net/0", "redis://odd:***@redis.example.net/0"),
])
def test_passwords_are_masked_and_the_rest_is_shown_as_given(given, shown):
    assert masked_redis_url(given) == shown


def test_the_banner_line_for_redis_never_shows_a_password(settings):
    url = ("redis+sentinel://callflow:dataPW@s1:26379,s2:26379/callflow/0"
           "?sentinel_password=sentinelPW")
    text = banner(settings.with_overrides(redis_url=url), "http://127.0.0.1:5000", url, False)
    redis_lines = [line for line in text.splitlines() if line.startswith("  redis ")]
    assert redis_lines == ["  redis       redis+sentinel://callflow:***@s1:26379,s2:26379/callflow/0"
                           "?sentinel_password=***"]
    assert "dataPW" not in text and "sentinelPW" not in text
