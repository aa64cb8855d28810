"""Content-Security-Policy on every response (Django 5.2 has no CSP middleware).

Templates keep scripts and styles in static files, so the policy needs no nonce and no
'unsafe-inline'; a response that sets its own policy keeps it.
"""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
