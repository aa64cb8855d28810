from django.contrib import admin

from reviewapp.accounts.forms import AdminSignInForm

# Django admin's login page shares the app's sign-in throttle (through the backend) and
# says so the same way.
admin.site.login_form = AdminSignInForm
