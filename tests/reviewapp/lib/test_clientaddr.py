from django.test import RequestFactory

from reviewapp.lib.clientaddr import client_address, throttle_scope


def request(**meta):
    return RequestFactory().get("/", **meta)


def test_the_forwarded_address_is_ignored_unless_behind_a_proxy(settings):
    settings.BEHIND_PROXY = False

    assert client_address(request(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4")) == (
        "10.0.0.1"
    )


def test_behind_a_proxy_the_address_it_appended_counts_not_the_clients_claims(settings):
    settings.BEHIND_PROXY = True
    forwarded = "6.6.6.6, 198.51.100.9"

    assert client_address(request(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)) == (
        "198.51.100.9"
    )
    assert client_address(request(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="junk")) == (
        "10.0.0.1"
    )


def test_ipv6_addresses_are_counted_per_64():
    assert throttle_scope("2001:db8:1:2:aaaa::1") == throttle_scope("2001:db8:1:2:bbbb::2")
    assert throttle_scope("2001:db8:1:2::1") != throttle_scope("2001:db8:1:3::1")
    assert throttle_scope("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle_scope("192.0.2.1") == "192.0.2.1"
